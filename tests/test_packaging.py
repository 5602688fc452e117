"""pyproject.toml holds where a known release breaks us, and the venv obeys it."""
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from mmext.config_scope import _distribution_installed

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())


def _requirements(items):
    return {Requirement(r).name: Requirement(r) for r in items}


def test_setuptools_82_is_excluded_for_build_and_run():
    # setuptools 82 removed pkg_resources (mmcv's build and mmengine 0.10 import it).
    for reqs in (PROJECT['build-system']['requires'], PROJECT['project']['dependencies']):
        spec = _requirements(reqs)['setuptools'].specifier
        assert Version('80.10.2') in spec and Version('82.0') not in spec
        assert Version('84.2.1') not in spec
    installed = Version(importlib.metadata.version('setuptools'))
    assert installed < Version('82'), f'this venv has setuptools {installed}'


def test_ninja_is_declared_and_installed():
    # Without ninja the LaU op would silently use the slow reference implementation.
    assert 'ninja' in _requirements(PROJECT['project']['dependencies'])
    importlib.metadata.version('ninja')


def test_requires_python_is_what_ci_runs():
    spec = Requirement('x' + PROJECT['project']['requires-python']).specifier
    running = Version('.'.join(map(str, sys.version_info[:3])))
    assert running in spec
    assert Version('3.10.0') not in spec and Version('3.12.0') not in spec


def test_core_dependencies_leave_an_existing_stack_alone():
    # Installing into an env with mmdet/mmseg (upstream or OneDL) must not swap them.
    core = _requirements(PROJECT['project']['dependencies'])
    for name in ('mmcv', 'mmdet', 'mmsegmentation', 'mmengine', 'onedl-mmcv',
                 'panopticapi-lite'):
        assert name not in core
    assert not core['numpy'].specifier or Version('2.2.6') in core['numpy'].specifier


def test_stack_extras_pin_what_each_stack_needs():
    extras = PROJECT['project']['optional-dependencies']
    upstream, onedl = _requirements(extras['upstream']), _requirements(extras['onedl'])
    # mmdet 3.3 / mmseg 1.2 refuse mmcv 2.2; panopticapi-lite needs numpy 1.
    assert Version('2.1.0') in upstream['mmcv'].specifier
    assert Version('2.2.0') not in upstream['mmcv'].specifier
    assert Version('2.0') not in upstream['numpy'].specifier
    assert Version('2.3.6') in onedl['onedl-mmcv'].specifier
    assert Version('3.5.1') in onedl['onedl-mmdetection'].specifier
    assert Version('1.4.2') in onedl['onedl-mmsegmentation'].specifier
    assert Version('2.2.6') in onedl['numpy'].specifier


def test_this_venv_matches_one_stack_extra():
    extras = PROJECT['project']['optional-dependencies']
    stack = 'onedl' if _distribution_installed('onedl-mmcv') else 'upstream'
    for req in map(Requirement, extras[stack]):
        version = Version(importlib.metadata.version(req.name))
        assert version in req.specifier, f'{req.name} {version} not in {req} ({stack})'
