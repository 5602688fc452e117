"""LaU configs: they build, add the paper's parameters, give the offset branch the head's
lr without weight decay, differ from their baselines only in head/loss/offset lines,
stop at once without their dataset, and every one of them trains a few iterations
(full-size ones with a tiny swapped backbone and a 64x64 crop; demo ones as they are)."""
import functools
import glob
import os.path as osp

import pytest
import torch

import mmext  # noqa: F401
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmext.engine import check_data_paths
from mmext.utils.errors import UserError
from mmext.seg import LaUHead
from tests.tool_runner import ROOT, run_tool

register_all_modules(init_default_scope=True)

LAU_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/lau/*.py')))
BASELINES = [c for c in LAU_CONFIGS if c.endswith('_bilinear.py')]
LAU_ONLY = [c for c in LAU_CONFIGS if not c.endswith('_bilinear.py')]
DEMO_LAU = 'configs/demo/seg_lau_demo.py'
DEMO_REG = 'configs/demo/seg_lau_reg_demo.py'
DEMO_BILINEAR = 'configs/demo/seg_bilinear_demo.py'
DEMOS = [DEMO_BILINEAR, DEMO_LAU, DEMO_REG]
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1']
OFFSET = 'decode_head.offset_branch'


def _name(path):
    return osp.basename(path)


def _base_of(path):
    with open(path) as f:
        text = f.read()
    start = text.index("_base_ = '") + len("_base_ = '")
    return osp.normpath(osp.join(osp.dirname(path), text[start:text.index("'", start)]))


def _baseline_of(path):
    """The bilinear config at the end of ``path``'s `_base_` chain (the LaU-reg configs
    derive from the LaU-og ones)."""
    for _ in range(3):
        path = _base_of(path)
        if path.endswith(('_bilinear.py', '_bilinear_demo.py')):
            return path
    raise AssertionError(f'{path}: no bilinear baseline within 3 _base_ steps')


@functools.lru_cache(maxsize=None)
def _built(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    return cfg, MODELS.build(cfg.model)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_every_lau_config_has_a_baseline():
    assert len(BASELINES) == 3 and len(LAU_ONLY) == 5
    for path in LAU_ONLY:
        assert _baseline_of(path) in [osp.normpath(b) for b in BASELINES]


# Stride of the wrapped head's logits: EncNet / FCN on dilated (D8) backbones at 8,
# DeepLabV3+'s decoder at 4 (it fuses the stride-4 features).
LOGIT_STRIDE = {'deeplabv3plus': 4, 'encnet': 8, 'seg': 8}


@pytest.mark.parametrize('path', LAU_CONFIGS + DEMOS, ids=_name)
def test_config_builds_the_model_it_describes(path):
    """Class count from the dataset, logits at k x the head's resolution for LaU (at
    the head's own for the baselines), the loss the file name says."""
    from mmseg.registry import DATASETS
    from mmext.seg import LaUOffsetGuidedLoss, LaURegressionLoss
    cfg, model = _built(path)
    classes = DATASETS.get(cfg.val_dataloader.dataset.type).METAINFO['classes']
    head = model.decode_head
    assert head.num_classes == len(classes)
    if cfg.model.get('auxiliary_head'):
        assert model.auxiliary_head.num_classes == len(classes)
    size = 64
    stride = LOGIT_STRIDE[_name(path).split('_')[0]]
    model.eval()
    with torch.no_grad():
        out = head(model.extract_feat(torch.randn(1, 3, size, size)))
    logits = out[0] if isinstance(out, tuple) else out  # EncHead: (logits, se)
    is_lau = not path.endswith(('bilinear.py', 'bilinear_demo.py'))
    assert isinstance(head, LaUHead) == is_lau
    k = cfg.model.decode_head.lau_factor if is_lau else 1
    assert logits.shape == (1, len(classes), size * k // stride, size * k // stride)
    if is_lau:
        assert k == 4  # the paper's factor in every LaU config
        loss = LaURegressionLoss if 'reg' in _name(path) else LaUOffsetGuidedLoss
        assert type(head.loss_decode) is loss


@pytest.mark.parametrize('path', LAU_ONLY, ids=_name)
def test_lau_adds_the_papers_parameters(path):
    # 2 x (512*128 + 128*16*9) = 167,936: the paper's +0.16 M for EncNet-R50.
    _, lau = _built(path)
    _, base = _built(_baseline_of(path))
    added = _count(lau) - _count(base)
    assert added == _count(lau.decode_head.offset_branch) == 167936
    assert 0.16e6 <= added <= 0.17e6


def _groups_by_name(model, wrapper):
    out = {}
    for group in wrapper.optimizer.param_groups:
        ids = {id(p) for p in group['params']}
        for name, p in model.named_parameters():
            if id(p) in ids:
                out[name] = group
    return out


@pytest.mark.parametrize('path', LAU_ONLY + [DEMO_LAU, DEMO_REG], ids=_name)
def test_offset_branch_learns_at_the_heads_lr_without_weight_decay(path):
    cfg, model = _built(path)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = _groups_by_name(model, wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    wd = cfg.optim_wrapper.optimizer.weight_decay
    head = groups['decode_head.head.conv_seg.weight']
    backbone = groups['backbone.stem.0.weight']
    offsets = [g for n, g in groups.items() if n.startswith(OFFSET)]
    assert len(offsets) == 4  # two branches x two convs
    for group in offsets:
        assert group['lr'] == pytest.approx(head['lr'])
        assert group['weight_decay'] == 0
    assert head['weight_decay'] == pytest.approx(wd) and wd > 0
    assert backbone['lr'] == pytest.approx(base_lr)
    # Official recipe (EncNet): heads at 10x the backbone; mmseg's (VOC, demo): 1x.
    expected = 10 if 'encnet' in path else 1
    assert head['lr'] == pytest.approx(expected * base_lr)
    if 'auxiliary_head' in {n.split('.')[0] for n in groups}:
        assert groups['auxiliary_head.conv_seg.weight']['lr'] == pytest.approx(head['lr'])


@pytest.mark.parametrize('path', LAU_ONLY + [DEMO_LAU], ids=_name)
def test_lau_config_differs_from_baseline_only_in_head_loss_offsets(path):
    lau = Config.fromfile(osp.join(ROOT, path)).to_dict()
    base = Config.fromfile(_baseline_of(osp.join(ROOT, path))).to_dict()
    lau_head, base_head = lau['model'].pop('decode_head'), base['model'].pop('decode_head')
    lau_keys = lau['optim_wrapper']['paramwise_cfg'].pop('custom_keys')
    base_keys = base['optim_wrapper'].get('paramwise_cfg', {}).pop('custom_keys', {})
    assert set(lau_keys) - set(base_keys) == {OFFSET}
    assert {k: v for k, v in lau_keys.items() if k != OFFSET} == base_keys
    for cfg in (lau, base):
        if not cfg['optim_wrapper'].get('paramwise_cfg', True):
            cfg['optim_wrapper'].pop('paramwise_cfg')
    assert lau == base
    changed = {k for k in set(lau_head) | set(base_head)
               if lau_head.get(k) != base_head.get(k)}
    assert changed <= {'type', 'head', 'loss_decode'} | {
        k for k in lau_head if k.startswith('lau_')}
    assert {'loss_decode', 'type', 'head'} <= changed


@pytest.mark.parametrize('path', LAU_CONFIGS, ids=_name)
def test_missing_dataset_names_the_folder(path):
    cfg = Config.fromfile(path)
    with pytest.raises(UserError) as info:
        check_data_paths(cfg, 'train')
    message = str(info.value)
    assert 'not found' in message and 'data/' in message and 'Expected layout' in message


def test_train_tool_stops_at_once_without_voc():
    proc = run_tool(['tools/train.py', 'configs/lau/'
                     'deeplabv3plus_r50-d8_lau_4xb4-40k_voc12aug-512x512.py',
                     '--work-dir', '/tmp/mmext_never_written'], timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "data_root 'data/VOCdevkit/VOC2012' not found" in proc.stderr


# -- every config trains -------------------------------------------------------------
def _tiny(cfg):
    """Swap the R50 for a ResNetV1c-18 of width 8 (BN), shrink the heads, 64x64 crop.

    The LaU parts (head wrapper, the authors' offset branch, the loss, the optimizer's
    paramwise rules) are the config's own."""
    bn = dict(type='BN', requires_grad=True)
    m = cfg.model
    m.pretrained = None
    m.data_preprocessor.size = (64, 64)
    m.backbone.update(depth=18, stem_channels=8, base_channels=8, norm_cfg=bn,
                      init_cfg=None)
    head = m.decode_head
    head.norm_cfg = bn
    head.channels = 16
    if head.get('head', head.type) == 'EncHead':
        head.update(in_channels=[16, 32, 64], num_codes=4)
    else:  # DeepLabV3+
        head.update(in_channels=64, c1_in_channels=8, c1_channels=4)
    if 'lau_offset_branch' in head:
        head.lau_offset_branch.mid_channels = 8
    m.auxiliary_head.update(in_channels=32, channels=8, norm_cfg=bn)
    return cfg


def _batch(num_classes, n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g,
                                    dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        label[:, :8] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('path', LAU_CONFIGS, ids=_name)
def test_full_size_config_trains_with_a_tiny_backbone(path):
    torch.manual_seed(0)
    cfg = _tiny(Config.fromfile(path))
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    is_lau = isinstance(model.decode_head, LaUHead)
    if is_lau:
        before = model.decode_head.offset_branch.offset_y[2].weight.detach().clone()
    batch = _batch(model.decode_head.num_classes)
    for _ in range(2):
        log_vars = model.train_step(batch, wrapper)
        assert torch.isfinite(log_vars['loss'])
    assert 'aux.loss_ce' in log_vars
    if 'encnet' in path:
        assert 'decode.loss_se' in log_vars
    if is_lau:
        loss_name = cfg.model.decode_head.loss_decode.type
        key = {'LaUOffsetGuidedLoss': 'decode.loss_lau_og',
               'LaURegressionLoss': 'decode.loss_lau_reg'}[loss_name]
        assert key in log_vars
        assert not torch.equal(before, model.decode_head.offset_branch.offset_y[2].weight)
    else:
        assert 'decode.loss_ce' in log_vars
    model.eval()
    with torch.no_grad():
        out = model.test_step(_batch(model.decode_head.num_classes, n=1))
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)


def _demo_loader(cfg):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope(cfg.default_scope)  # as the Runner does: datasets are mmseg's
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
    return Runner.build_dataloader(loader_cfg, seed=0)


@pytest.mark.parametrize('path', [DEMO_BILINEAR, DEMO_REG], ids=_name)
def test_demo_config_trains(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    # Validation reports mIoU and the boundary mIoU at 3 and 8 px.
    assert [e['type'] for e in cfg.val_evaluator] == ['IoUMetric', 'BoundaryIoUMetric']
    assert tuple(cfg.val_evaluator[1]['widths']) == (3, 8)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = iter(_demo_loader(cfg))
    for _ in range(2):
        log_vars = model.train_step(next(batches), wrapper)
        assert torch.isfinite(log_vars['loss'])
    assert ('decode.loss_lau_reg' if path == DEMO_REG else 'decode.loss_ce') in log_vars


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
    cfg = Config.fromfile(osp.join(ROOT, DEMO_LAU))
    # The config edit: another head under LaU, same LaU and loss lines.
    old = cfg.model.decode_head
    cfg.model.decode_head = dict(
        type='LaUHead', head=head, in_channels=old.in_channels, channels=16,
        num_classes=old.num_classes, norm_cfg=old.norm_cfg, dropout_ratio=0.1,
        lau_factor=old.lau_factor, lau_offset_branch=old.lau_offset_branch,
        loss_decode=old.loss_decode, **HEAD_EDITS[head])
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.decode_head.head).__name__ == head
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = iter(_demo_loader(cfg))
    before = model.decode_head.offset_branch.offset_x[2].weight.detach().clone()
    for _ in range(2):
        log_vars = model.train_step(next(batches), wrapper)
        assert torch.isfinite(log_vars['loss'])
    assert not torch.equal(before, model.decode_head.offset_branch.offset_x[2].weight)


# The reproduction configs whose authors' code exists (EncNet on ADE20K / Context,
# LaU-reg/encoding/models/encnet.py): the authors' backbone. The VOC DeepLabV3+ pair
# has no official code and keeps mmseg's ResNetV1c.
AUTHORS_BACKBONE = [c for c in LAU_CONFIGS if _name(c).startswith('encnet')]


@pytest.mark.parametrize('path', AUTHORS_BACKBONE, ids=_name)
def test_reproduction_configs_use_the_authors_backbone_stem(path):
    """Deep stem conv3x3(3, 64, s2)-conv3x3(64, 64)-conv3x3(64, 128), each with BN +
    ReLU, then max-pool (dilated/resnet.py L137-L154), from the converted PyTorch-
    Encoding weights; a LaU config and its baseline share the backbone config."""
    assert len(AUTHORS_BACKBONE) == 6
    cfg, model = _built(path)
    stem = model.backbone.stem
    convs = [m for m in stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 64),
                                                               (64, 128)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert [type(m).__name__ for m in stem][1::3] == ['SyncBatchNorm'] * 3
    assert model.backbone.layer1[0].conv1.in_channels == 128
    assert not model.backbone.avg_down  # strided 1x1 downsample, as the official
    assert cfg.model.get('pretrained') is None
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained'
    assert init.checkpoint == 'checkpoints/encoding_resnet50-25c4b509_mmseg.pth'
    if not path.endswith('_bilinear.py'):
        base = Config.fromfile(_baseline_of(path))
        assert cfg.model.backbone.to_dict() == base.model.backbone.to_dict()
        assert cfg.model.get('pretrained') == base.model.get('pretrained')


# -- the authors' evaluation (tools/test.py --tta) -------------------------------------
ENCNET = [c for c in LAU_CONFIGS if _name(c).startswith('encnet')]


@pytest.mark.parametrize('path', ENCNET, ids=_name)
def test_tta_is_the_official_multi_eval_and_runs(path, tmp_path):
    """Every EncNet config (the LaU ones inherit it from their baseline) tests with
    --tta as the authors' MultiEvalModule: ADE20K 6 scales + flip, Context single scale
    without flip; 520 / 480 / stride 2/3. Its tta_pipeline loads one image and its
    tta_model wraps the config's model (tiny backbone, base 64, crop 48) and runs."""
    import cv2
    import numpy as np
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmext.seg import EncodingMultiEvalTTA
    cfg = _tiny(Config.fromfile(path))
    init_default_scope(cfg.default_scope)  # as the Runner does: transforms are mmseg's
    tta = dict(cfg.tta_model)
    ade = 'ade20k' in path
    assert tta['type'] == 'EncodingMultiEvalTTA'
    assert list(tta['scales']) == ([0.5, 0.75, 1.0, 1.25, 1.5, 1.75] if ade else [1.0])
    assert tta['flip'] is ade
    assert (tta['base_size'], tta['crop_size']) == (520, 480)
    assert tta['stride_rate'] == pytest.approx(2 / 3)
    if not path.endswith('_bilinear.py'):  # inherited: run once, on the baseline
        base = Config.fromfile(_baseline_of(path))
        assert cfg.tta_model == base.tta_model and cfg.tta_pipeline == base.tta_pipeline
        return
    torch.manual_seed(0)
    tta.update(base_size=64, crop_size=48)
    model = MODELS.build(dict(**tta, module=cfg.model))
    assert isinstance(model, EncodingMultiEvalTTA)
    model.module.init_weights()
    model.eval()
    h, w = 48, 64
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'img.png'), rng.integers(0, 256, (h, w, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'seg.png'), rng.integers(0, 30, (h, w), np.uint8))
    pipeline = Compose(cfg.tta_pipeline)
    item = pipeline(dict(img_path=str(tmp_path / 'img.png'),
                         seg_map_path=str(tmp_path / 'seg.png'), reduce_zero_label=True,
                         seg_fields=[]))
    with torch.no_grad():
        out = model.test_step(pseudo_collate([item]))
    assert len(out) == 1
    num_classes = model.module.decode_head.num_classes
    assert out[0].seg_logits.data.shape == (num_classes, h, w)
    assert out[0].pred_sem_seg.data.shape == (1, h, w)
    assert out[0].gt_sem_seg.data.shape == (1, h, w)
    assert torch.isfinite(out[0].seg_logits.data).all()


@pytest.mark.parametrize('path', ENCNET, ids=_name)
def test_reproduction_configs_train_with_the_authors_settings(path):
    """align_corners=True resizes and labelled-pixel CE means (encnet.py:L60-L66,
    customize.py:L24-L29, L152), the authors' length, and their augmentation run on a
    small image: zero-padded raw image with ignored labels, no photometric change."""
    import numpy as np
    from mmcv.transforms import Compose
    cfg = Config.fromfile(path)
    model = cfg.model
    assert model.decode_head.align_corners and model.auxiliary_head.align_corners
    assert model.auxiliary_head.loss_decode.avg_non_ignore
    if _name(path).endswith('_bilinear.py'):
        assert model.decode_head.loss_decode.avg_non_ignore
    assert cfg.train_cfg.max_iters == (24960 if 'pascal-context' in path else 227340)
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomFlip', 'RandomResize',
        'RandomCrop', 'Pad', 'PILGaussianBlur', 'PackSegInputs']
    crop = cfg.train_pipeline[4]
    assert crop.get('cat_max_ratio', 1.0) == 1.0
    # the steps after loading, on a 100 x 60 image scaled to a short side < 480
    steps = [dict(t) for t in cfg.train_pipeline[2:-1]]
    steps[0].update(prob=1.0)  # flipped or not, the padding is bottom/right
    steps[1].update(ratio_range=(0.5, 0.5))  # short side 260: padding needed
    steps[4].update(prob=0.0)  # (the blur itself: tests/datasets)
    img = np.full((60, 100, 3), 200, np.uint8)
    from mmseg.registry import TRANSFORMS
    out = Compose([TRANSFORMS.build(t) for t in steps])(dict(img=img, gt_seg_map=np.full((60, 100), 3, np.uint8),
                              seg_fields=['gt_seg_map'], img_shape=(60, 100)))
    assert out['img'].shape == (480, 480, 3) and out['gt_seg_map'].shape == (480, 480)
    width = 433  # 100 * 260 / 60
    assert (out['img'][:260, :width] == 200).all()
    assert (out['img'][260:] == 0).all() and (out['img'][:, width:] == 0).all()
    assert (out['gt_seg_map'][:260, :width] == 3).all()
    assert (out['gt_seg_map'][260:] == 255).all()
    assert (out['gt_seg_map'][:, width:] == 255).all()


def test_missing_pretrained_backbone_is_named_before_training(tmp_path):
    """The converted ImageNet weights of the authors' backbone missing: one line with
    the path and the way out, in training only (testing loads a whole checkpoint)."""
    from mmext.engine import check_model_checkpoints
    cfg = Config.fromfile(ENCNET[0])
    path = cfg.model.backbone.init_cfg.checkpoint
    assert not osp.isfile(osp.join(ROOT, path))
    with pytest.raises(UserError, match='pretrained weights') as info:
        check_model_checkpoints(cfg, 'train')
    assert path in str(info.value) and 'model.backbone.init_cfg=None' in str(info.value)
    check_model_checkpoints(cfg, 'test')
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'empty.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(UserError, match='empty.pth'):
        check_model_checkpoints(cfg, 'train')
