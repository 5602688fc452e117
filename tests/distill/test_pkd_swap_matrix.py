"""PKD across mmdet's detector families, each built from mmdet's own config.

Every family is distilled once as the student (of the next family's teacher) and
once as the teacher (of the previous family's student): a ring over one-stage
(RetinaNet, FCOS, ATSS, GFL), RTMDet (CSPNeXtPAFPN), DETR-family (Deformable DETR,
DINO: ChannelMapper, 4 levels; DETR: one stride-32 map), two-stage (Faster R-CNN,
Mask R-CNN) and cascade (Cascade R-CNN) detectors. Each case builds the
``FeatureDistiller`` from the two ``mmdet::`` configs with the backbone shrunk
(ResNet-18 / RTMDet-tiny, one transformer layer, random init, no download), checks
the measured strides and the logged pair description (a warning exactly where a
pair is resized more than 2x), and runs one training step on a 64x64 batch: finite
losses, and distillation terms whose gradient reaches the student.

The unsupported combinations end in one ``UserError`` at build time that names the
reason (last test; docs/pkd.md "Which detectors").
"""
import copy
import logging
from typing import Dict, List, Tuple

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.hub import get_config

import mmext  # noqa: F401  (registers FeatureDistiller / PKDLoss)
from mmext.utils.errors import UserError

R18_CHANNELS = (64, 128, 256, 512)

# family -> (mmdet config, measured strides of its neck outputs, their channels)
FAMILIES: Dict[str, Tuple[str, List[int], int]] = {
    'retinanet': ('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
                  [8, 16, 32, 64, 128], 256),
    'fcos': ('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
             [8, 16, 32, 64, 128], 256),
    'atss': ('mmdet::atss/atss_r50_fpn_1x_coco.py', [8, 16, 32, 64, 128], 256),
    'gfl': ('mmdet::gfl/gfl_r50_fpn_1x_coco.py', [8, 16, 32, 64, 128], 256),
    'rtmdet': ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', [8, 16, 32], 96),
    'deformable_detr': ('mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
                        [8, 16, 32, 64], 256),
    'dino': ('mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', [8, 16, 32, 64], 256),
    'faster_rcnn': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                    [4, 8, 16, 32, 64], 256),
    'cascade_rcnn': ('mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                     [4, 8, 16, 32, 64], 256),
    'detr': ('mmdet::detr/detr_r18_8xb2-500e_coco.py', [32], 256),
    'mask_rcnn': ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                  [4, 8, 16, 32, 64], 256),
}
# Used only in the refused combinations: one stride-4 map (CTResNetNeck).
OTHERS = {'centernet': ('mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py',
                        [4], 64)}
RING = list(FAMILIES)
# (student, teacher): each family once in each role.
PAIRS = [(RING[i], RING[(i + 1) % len(RING)]) for i in range(len(RING))]


def _without_syncbn(node):
    """SyncBN -> BN everywhere in a config (RTMDet's; SyncBN needs a process group)."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _without_syncbn(value)
    elif isinstance(node, list):
        for value in node:
            _without_syncbn(value)


def family_model(family: str) -> ConfigDict:
    """The model dict of ``family``'s mmdet config, shrunk for a CPU test: ResNet-18
    (its channels set in the neck), one encoder / decoder layer and 30 queries
    for the DETR family, 32 sampled RoIs per image and 256-wide fc layers for the
    (cascade) R-CNN heads, random init (no pretrained download), SyncBN -> BN."""
    model = copy.deepcopy(get_config({**FAMILIES, **OTHERS}[family][0]).model)
    backbone = model.backbone
    backbone.init_cfg = None
    if backbone.type == 'ResNet' and backbone.depth != 18:
        backbone.depth = 18
        model.neck.in_channels = [R18_CHANNELS[i] for i in
                                  backbone.get('out_indices', (0, 1, 2, 3))]
    for part in ('encoder', 'decoder'):
        if part in model:
            model[part].num_layers = 1
    if 'num_queries' in model:
        model.num_queries = 30
    rcnn = (model.get('train_cfg') or {}).get('rcnn')  # two-stage / cascade
    for stage in (rcnn if isinstance(rcnn, list) else [rcnn] if rcnn else []):
        stage.sampler.num = 32  # RoIs per image (512)
    heads = model.get('roi_head', {}).get('bbox_head', [])
    for head in (heads if isinstance(heads, list) else [heads]):
        head.fc_out_channels = 256  # (1024): 256 * 7 * 7 -> 1024 fc layers
    _without_syncbn(model)
    return model


def _batch(with_masks: bool, size: int = 64, num: int = 2):
    """Two 64x64 images with two boxes and labels each (and masks: only for a
    Mask R-CNN student; RTMDet's assigner would use them), as a data preprocessor
    gives them (normalised inputs, metainfo of a padded batch)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[4., 6., 30., 40.], [20., 16., 60., 56.]])
    samples = []
    for _ in range(num):
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1., 1.)))
        masks = torch.zeros(2, size, size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(bboxes=boxes.clone(),
                                           labels=torch.tensor([0, 2]))
        if with_masks:
            sample.gt_instances.masks = BitmapMasks(masks.numpy(), size, size)
        samples.append(sample)
    return torch.randn(num, 3, size, size, generator=gen), samples


def _distiller(student: str, teacher: str, monkeypatch, **distill):
    """(FeatureDistiller student <- teacher, [(log level, message)] of its build)."""
    from mmdet.registry import MODELS
    from mmext.distill import feature_distiller
    records = []
    monkeypatch.setattr(feature_distiller, 'print_log',
                        lambda msg, logger=None, level=None: records.append((level, msg)))
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='FeatureDistiller', student=family_model(student),
        teacher=dict(config=family_model(teacher), checkpoint=None, random_init=True),
        distill=dict(loss=dict(type='PKDLoss', loss_weight=1.0), **distill)))
    # As the runner does (e.g. DETR-family level embeddings are torch.Tensor(...),
    # uninitialised memory, until then).
    model.init_weights()
    return model, records


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(autouse=True)
def mmdet_scope(fresh_default_scope):
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    yield


@pytest.mark.parametrize('student,teacher', PAIRS, ids=[f'{s}<-{t}' for s, t in PAIRS])
def test_family_pair_trains_one_step(student, teacher, monkeypatch):
    model, records = _distiller(student, teacher, monkeypatch)
    s_strides, s_channels = FAMILIES[student][1:]
    t_strides, t_channels = FAMILIES[teacher][1:]
    assert model.student_levels == [(s, s_channels) for s in s_strides]
    assert model.teacher_levels == [(s, t_channels) for s in t_strides]
    # index pairing (the default): neck output i with i, as many as both have
    num = min(len(s_strides), len(t_strides))
    assert [(p.student, p.teacher) for p in model.level_pairs] == [
        (i, i) for i in range(num)]
    assert sorted(model.adapters) == (
        [f'fpn{i}' for i in range(num)] if s_channels != t_channels else [])

    # The log: one INFO message, a line per pair; a WARNING per pair resized > 2x.
    info = [msg for level, msg in records if level == logging.INFO]
    warnings = [msg for level, msg in records if level == logging.WARNING]
    assert len(info) == 1 and len(records) == 1 + len(warnings)
    for i in range(num):
        adapter = (f'1x1 conv {s_channels}->{t_channels}' if s_channels != t_channels
                   else 'none')
        assert (f'fpn{i}: student level {i} (stride {s_strides[i]}, {s_channels} ch) '
                f'-> teacher level {i} (stride {t_strides[i]}, {t_channels} ch)'
                ) in info[0]
        assert f'adapter {adapter}' in info[0]
    far = [i for i in range(num)
           if max(s_strides[i], t_strides[i]) > 2 * min(s_strides[i], t_strides[i])]
    assert [w.split(' pairs ')[0] for w in warnings] == [
        f'FeatureDistiller: distill level fpn{i}' for i in far]
    for warning in warnings:
        assert "distill.pairing='stride'" in warning and 'distill.levels' in warning

    # One training step: finite losses; the distillation terms reach the student.
    model.train()
    losses = model.loss(*_batch(student == 'mask_rcnn'))
    distill = {k: v for k, v in losses.items() if k.startswith('loss_pkd_')}
    assert sorted(distill) == [f'loss_pkd_fpn{i}' for i in range(num)]
    assert all(torch.isfinite(v) and v.requires_grad for v in distill.values())
    neck = [p for p in model.student.neck.parameters() if p.requires_grad]
    grads = torch.autograd.grad(sum(distill.values()), neck, retain_graph=True,
                                allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters()
               if p.grad is not None)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_detr_with_stride_pairing_meets_the_teachers_stride_32_map(monkeypatch):
    """The fix the warning suggests: DETR's one map with the stride-32 teacher map."""
    model, records = _distiller('detr', 'mask_rcnn', monkeypatch, pairing='stride')
    assert model.level_pairs == [('s32', 0, 3)]
    assert [level for level, _ in records] == [logging.INFO]
    assert 'resize none (equal strides)' in records[0][1]
    model.train()
    losses = model.loss(*_batch(False))
    assert torch.isfinite(losses['loss_pkd_s32'])


# student, teacher, distill settings, what the error says
UNSUPPORTED = [
    ('detr', 'mask_rcnn', dict(levels=[0, 1, 2, 3]),
     r'index 1 does not exist: the student neck has 1 levels'),
    ('centernet', 'retinanet', dict(pairing='stride'),
     r'student strides \[4\] and teacher strides \[8, 16, 32, 64, 128\] share none'),
    ('rtmdet', 'retinanet', dict(adapter=False),
     r'fpn0: the student has 96 channels, the teacher 256; PKD needs equal channels'),
]


@pytest.mark.parametrize('student,teacher,distill,message', UNSUPPORTED,
                         ids=[f'{s}<-{t}' for s, t, _, _ in UNSUPPORTED])
def test_unsupported_pairs_are_one_clear_error(student, teacher, distill, message,
                                               monkeypatch):
    with pytest.raises(UserError, match=message):
        _distiller(student, teacher, monkeypatch, **distill)
