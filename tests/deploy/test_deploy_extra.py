"""The deploy extra is declared, installed by tools/install.sh on both stacks, and
satisfied in this venv (CI installs it: no deploy test may skip)."""
import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_extra_is_declared_and_installed():
    extras = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project'][
        'optional-dependencies']
    deploy = {Requirement(r).name: Requirement(r) for r in extras['deploy']}
    assert set(deploy) == {'onnx', 'onnxruntime', 'onnxscript'}
    for name, req in deploy.items():
        version = Version(importlib.metadata.version(name))
        assert version in req.specifier, f'{name} {version} not in {req}'


def test_install_script_installs_the_deploy_extra_with_the_stack():
    script = (ROOT / 'tools/install.sh').read_text()
    assert re.search(r'pip install .*-e "\.\[tests,deploy,\$STACK\]"', script)
