"""Parsing 'mmext::' configs: on with ``import mmext``, opt-in at start-up, off elsewhere."""
import subprocess
import sys
import types

import pytest

from mmext import config_scope

USER_CFG = "_base_ = 'mmext::demo/retinanet_r18_demo.py'\nmodel = dict(bbox_head=dict(num_classes=5))\n"


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def user_cfg(tmp_path):
    path = tmp_path / 'my_retinanet.py'
    path.write_text(USER_CFG)
    return path


PARSE = ('from mmengine.config import Config; import sys; '
         "cfg = Config.fromfile({cfg!r}, import_custom_modules=False); "
         'print(cfg.model.bbox_head.num_classes, cfg.model.backbone.depth, '
         "'mmext' in sys.modules)")


def test_no_effect_on_a_process_that_does_not_use_mmext(user_cfg, tmp_path):
    # The default install writes no start-up hook: mmengine alone knows no 'mmext'.
    assert not (tmp_path / config_scope.PTH_NAME).exists()
    proc = _python('import mmengine.config.utils as u, sys; '
                   "print('mmext' in u.MODULE2PACKAGE, "
                   "any(m.split('.')[0] in ('mmext', '_mmext_config_scope') for m in sys.modules))",
                   tmp_path)
    assert proc.stdout.split() == ['False', 'False'], proc.stderr
    proc = _python(PARSE.format(cfg=str(user_cfg)), tmp_path)
    assert proc.returncode != 0 and 'mmext' in proc.stderr


def test_import_mmext_is_enough_for_parsing(user_cfg, tmp_path):
    proc = _python('import mmext; ' + PARSE.format(cfg=str(user_cfg)), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-3:] == ['5', '18', 'True']


def test_enabled_start_up_hook_parses_without_importing_mmext(user_cfg, tmp_path):
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    assert config_scope.main(['enable', '--site-dir', str(site_dir)]) == 0
    assert (site_dir / config_scope.PTH_NAME).exists()
    # site.addsitedir runs the .pth as interpreter start-up does for site-packages.
    proc = _python(f'import site; site.addsitedir({str(site_dir)!r}); '
                   + PARSE.format(cfg=str(user_cfg)), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-3:] == ['5', '18', 'False']  # the hook imported no mmext

    assert config_scope.main(['disable', '--site-dir', str(site_dir)]) == 0
    assert not (site_dir / config_scope.PTH_NAME).exists()
    assert config_scope.disable(str(site_dir)) is None


def test_status_reports_the_state(tmp_path, capsys):
    config_scope.main(['status', '--site-dir', str(tmp_path)])
    assert 'disabled' in capsys.readouterr().out
    config_scope.enable(str(tmp_path))
    config_scope.main(['status', '--site-dir', str(tmp_path)])
    assert 'enabled' in capsys.readouterr().out


def test_register_maps_a_missing_distribution_to_the_module_name():
    # The OneDL forks: mmengine maps 'mmseg' to 'mmsegmentation', installed as
    # 'onedl-mmsegmentation'. An installed distribution name is left alone.
    fake = types.SimpleNamespace(MODULE2PACKAGE={
        'mmseg': 'no-such-distribution-xyz', 'mmdet': 'mmdet'})
    config_scope._register(fake)
    assert fake.MODULE2PACKAGE['mmseg'] == 'mmseg'
    assert fake.MODULE2PACKAGE['mmext'] == 'mmext'
    assert fake.MODULE2PACKAGE['mmdet'] == 'mmdet'

    installed = types.SimpleNamespace(MODULE2PACKAGE={'mmseg': 'torch'})  # an installed dist
    config_scope._register(installed)
    assert installed.MODULE2PACKAGE['mmseg'] == 'torch'


def test_mmseg_and_mmext_configs_resolve_on_this_stack(tmp_path):
    # Whichever stack runs the suite (upstream or OneDL), both prefixes must parse.
    (tmp_path / 'seg.py').write_text("_base_ = 'mmext::demo/seg_lau_demo.py'\n")
    (tmp_path / 'up.py').write_text(
        "_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'\n")
    import mmext  # noqa: F401
    from mmengine.config import Config
    assert Config.fromfile(str(tmp_path / 'seg.py')).model.decode_head.type == 'LaUHead'
    assert Config.fromfile(str(tmp_path / 'up.py')).model.decode_head.type == 'FCNHead'


def test_command_line_enable_status_disable(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, '-m', 'mmext', 'config-scope', *args,
                               '--site-dir', str(tmp_path)], capture_output=True,
                              text=True, timeout=300)
    proc = run('enable')
    assert proc.returncode == 0 and 'Warning' not in proc.stderr, proc.stderr
    assert (tmp_path / config_scope.PTH_NAME).exists()
    assert 'enabled' in run('status').stdout
    run('disable')
    assert not (tmp_path / config_scope.PTH_NAME).exists()
    bad = subprocess.run([sys.executable, '-m', 'mmext', 'scope'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'config-scope' in bad.stderr
