"""LaU configs: they build, differ from their baselines only in head/loss/optim lines,
stop at once without their dataset; the demo LaU config trains via tools/train.py; the
base head under LaU is swapped by a config edit."""
import glob
import os.path as osp

import pytest
import torch

import mmext  # noqa: F401
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from mmext.engine import check_data_paths
from mmext.engine.errors import UserError
from mmext.seg import LaUMixin
from tests.tool_runner import ROOT, run_tool

register_all_modules(init_default_scope=True)

LAU_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/lau/*.py')))
BASELINES = [c for c in LAU_CONFIGS if c.endswith('_bilinear.py')]
LAU_ONLY = [c for c in LAU_CONFIGS if not c.endswith('_bilinear.py')]
DEMO_LAU = 'configs/demo/seg_lau_demo.py'
DEMO_BILINEAR = 'configs/demo/seg_bilinear_demo.py'
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1']


def _name(path):
    return osp.basename(path)


def _baseline_of(cfg_path):
    cfg = Config.fromfile(cfg_path)
    base = cfg.filename
    # The LaU configs' _base_ is their baseline file.
    with open(base) as f:
        text = f.read()
    start = text.index("_base_ = '") + len("_base_ = '")
    return osp.join(osp.dirname(base), text[start:text.index("'", start)])


def test_every_lau_config_has_a_baseline():
    assert len(BASELINES) >= 3 and len(LAU_ONLY) >= 5
    for path in LAU_ONLY:
        assert _baseline_of(path) in [osp.normpath(b) for b in BASELINES] or \
            osp.normpath(_baseline_of(path)) in [osp.normpath(b) for b in BASELINES]


@pytest.mark.parametrize('path', LAU_CONFIGS + [DEMO_LAU, DEMO_BILINEAR], ids=_name)
def test_config_builds(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    model = MODELS.build(cfg.model)
    is_lau = 'lau' in osp.basename(path) and not path.endswith('_bilinear.py') \
        and 'bilinear' not in osp.basename(path)
    assert isinstance(model.decode_head, LaUMixin) == is_lau
    if is_lau:
        # lr x10 and no weight decay for the offset branch.
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        base_lr = cfg.optim_wrapper.optimizer.lr
        found = False
        for group in wrapper.optimizer.param_groups:
            names = [n for n, p in model.named_parameters()
                     if any(p is q for q in group['params'])]
            if names and all('lau_offset_branch' in n for n in names):
                found = True
                assert group['lr'] == pytest.approx(10 * base_lr)
                assert group['weight_decay'] == 0
        assert found


@pytest.mark.parametrize('path', LAU_ONLY, ids=_name)
def test_lau_config_differs_from_baseline_only_in_head_loss_optim(path):
    lau = Config.fromfile(path).to_dict()
    base = Config.fromfile(_baseline_of(path)).to_dict()
    lau_head, base_head = lau['model'].pop('decode_head'), base['model'].pop('decode_head')
    lau.pop('optim_wrapper'), base.pop('optim_wrapper')
    assert lau == base
    changed = {k for k in set(lau_head) | set(base_head)
               if lau_head.get(k) != base_head.get(k)}
    assert changed <= {'type', 'head', 'loss_decode'} | {
        k for k in lau_head if k.startswith('lau_')}
    assert 'loss_decode' in changed and 'type' in changed


@pytest.mark.parametrize('path', LAU_CONFIGS, ids=_name)
def test_missing_dataset_names_the_folder(path):
    cfg = Config.fromfile(path)
    with pytest.raises(UserError) as info:
        check_data_paths(cfg, 'train')
    message = str(info.value)
    assert 'not found' in message and cfg.train_dataloader['dataset'] is not None
    assert 'data/' in message and 'Expected layout' in message


def test_train_tool_stops_at_once_without_voc():
    proc = run_tool(['tools/train.py', 'configs/lau/'
                     'deeplabv3plus_r50-d8_lau_4xb4-40k_voc12aug-512x512.py',
                     '--work-dir', '/tmp/mmext_never_written'], timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "data_root 'data/VOCdevkit/VOC2012' not found" in proc.stderr


def test_demo_lau_config_trains_via_tool(tmp_path):
    proc = run_tool(['tools/train.py', DEMO_LAU, '--work-dir', str(tmp_path),
                     '--cfg-options', *FAST, 'train_cfg.max_iters=3',
                     'train_cfg.val_interval=1000', 'default_hooks.checkpoint.interval=3'],
                    timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'decode.loss_lau_og' in log and 'Iter(train) [3/3]' in log
    assert (tmp_path / 'iter_3.pth').is_file()
    # The pictures tool on that checkpoint: image | GT | bilinear | LaU | offsets.
    out = tmp_path / 'vis.png'
    proc = run_tool(['tools/visualize_lau.py', DEMO_LAU, str(tmp_path / 'iter_3.pth'),
                     '--num', '2', '--out', str(out)], timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import cv2
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] > 5 * 160 * 2  # 5 panels at scale 2


HEAD_EDITS = {
    'FCNHead': dict(num_convs=1, concat_input=False),
    'ASPPHead': dict(dilations=(1, 6)),
    'PSPHead': dict(pool_scales=(1, 2, 3)),
}


@pytest.mark.parametrize('head', sorted(HEAD_EDITS))
def test_swap_base_head_by_config_edit_trains(head):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, DEMO_LAU))
    init_default_scope(cfg.default_scope)  # as the Runner does: datasets are mmseg's
    # The config edit: another head under LaU, same LaU and loss lines.
    old = cfg.model.decode_head
    cfg.model.decode_head = dict(
        type='LaUHead', head=head, in_channels=old.in_channels, channels=16,
        num_classes=old.num_classes, norm_cfg=old.norm_cfg, dropout_ratio=0.1,
        lau_factor=old.lau_factor, lau_offset_branch=old.lau_offset_branch,
        loss_decode=old.loss_decode, **HEAD_EDITS[head])
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.decode_head).__name__ == f'LaU{head}'
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = iter(loader)
    before = model.decode_head.lau_offset_branch.predict.weight.detach().clone()
    for _ in range(2):
        log_vars = model.train_step(next(batches), wrapper)
        assert torch.isfinite(log_vars['loss'])
    after = model.decode_head.lau_offset_branch.predict.weight
    assert not torch.equal(before, after)
