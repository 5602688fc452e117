"""SpatialFlow with other backbones and necks, by config alone.

Each case is the R18 demo config (configs/demo/spatialflow_r18_demo.py) with only
``model.backbone`` and ``model.neck`` replaced: ResNet, ResNeXt, RegNet, Swin and
PVTv2 with RetinaNet's FPN (P3..P7), HRNet with HRFPN(stride=2) (strides 8..128, the
anchor strides). Widths and depths are shrunk, weights random (``init_cfg=None``).
Each case runs one training step (every loss finite, gradient in the backbone) and
one prediction (a valid panoptic map). HRFPN with its default ``stride=1``
(strides 4..64) is refused when the model is built, naming both stride lists.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS, MODELS

import mmext  # noqa: F401
from tests.tool_runner import ROOT

DEMO = osp.join(ROOT, 'configs/demo/spatialflow_r18_demo.py')
NUM_THINGS, NUM_STUFF = 3, 3
HRNET_CHANNELS = [8, 16, 32, 64]


def _hrnet(num_channels: List[int]) -> dict:
    """A one-module, one-block-per-branch HRNet with the given branch widths."""
    def stage(n: int, block: str = 'BASIC') -> dict:
        return dict(num_modules=1, num_branches=n, block=block, num_blocks=(1, ) * n,
                    num_channels=tuple(num_channels[:n]))
    return dict(type='HRNet', init_cfg=None, extra=dict(
        stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                    num_blocks=(1, ), num_channels=(16, )),
        stage2=stage(2), stage3=stage(3), stage4=stage(4)))


# name -> (backbone, its output channels (FPN in_channels), neck or None for the
# demo's FPN with those in_channels)
BACKBONES: Dict[str, Tuple[dict, List[int], Optional[dict]]] = {
    'resnet18': (dict(type='ResNet', depth=18, frozen_stages=-1, norm_eval=False,
                      init_cfg=None), [64, 128, 256, 512], None),
    'resnext50_8x4d': (dict(type='ResNeXt', depth=50, groups=8, base_width=4,
                            frozen_stages=-1, norm_eval=False, init_cfg=None),
                       [256, 512, 1024, 2048], None),
    'regnetx_400mf': (dict(type='RegNet', arch='regnetx_400mf', out_indices=(0, 1, 2, 3),
                           frozen_stages=-1, norm_eval=False, init_cfg=None),
                      [32, 64, 160, 384], None),
    'swin': (dict(type='SwinTransformer', embed_dims=32, depths=(1, 1, 1, 1),
                  num_heads=(1, 2, 4, 8), window_size=7, out_indices=(0, 1, 2, 3),
                  init_cfg=None), [32, 64, 128, 256], None),
    'pvtv2': (dict(type='PyramidVisionTransformerV2', embed_dims=16,
                   num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8], init_cfg=None),
              [16, 32, 80, 128], None),
    # HRNet's four branches (strides 4..32) merged by HRFPN at stride 4; its 3x3
    # output convs with stride=2 give strides 8..128, the anchor strides.
    'hrnet': (_hrnet(HRNET_CHANNELS), HRNET_CHANNELS,
              dict(type='HRFPN', in_channels=HRNET_CHANNELS, out_channels=64,
                   stride=2, num_outs=5)),
}


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(DEMO)


@pytest.fixture(scope='module')
def batches(cfg):
    """(one training sample, one validation sample) of the demo data, collated."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    return pseudo_collate([train[0]]), pseudo_collate([val[0]])


def swapped(cfg, name: str) -> dict:
    """The demo model config with ``name``'s backbone and neck."""
    backbone, channels, neck = BACKBONES[name]
    model = copy.deepcopy(cfg.model)
    model.backbone = copy.deepcopy(backbone)
    model.neck = copy.deepcopy(neck) if neck else dict(model.neck, in_channels=channels)
    return model


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_trains_and_predicts(cfg, batches, name):
    torch.manual_seed(0)
    model = MODELS.build(swapped(cfg, name))
    model.init_weights()
    assert [s for s, _ in model.measure_neck()] == [8, 16, 32, 64, 128]

    model.train()
    data = model.data_preprocessor(copy.deepcopy(batches[0]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_cls', 'loss_bbox', 'loss_mask', 'loss_seg'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    # (Swin's / PVTv2's norm of stage 0 gets none: RetinaNet's FPN starts at C3.)
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0

    model.eval()
    data = model.data_preprocessor(copy.deepcopy(batches[1]), False)
    with torch.no_grad():
        sample = model.predict(data['inputs'], data['data_samples'])[0]
    pan = sample.pred_panoptic_seg.sem_seg
    assert pan.shape == (1, *sample.ori_shape) and pan.dtype == torch.int64
    labels = pan % INSTANCE_OFFSET
    assert (labels <= NUM_THINGS + NUM_STUFF).all()


def test_hrfpn_with_its_default_stride_is_refused_at_build(cfg):
    """HRFPN(stride=1) outputs strides 4..64; the anchors are 8..128. Before the
    strides were measured, this built and the first step failed in the stuff loss
    with a message about padding."""
    model = swapped(cfg, 'hrnet')
    model.neck.stride = 1
    with pytest.raises(ValueError) as info:
        MODELS.build(model)
    assert str(info.value) == (
        'SpatialFlow config: the neck outputs 5 maps of strides [4, 8, 16, 32, 64] '
        '(measured with a dummy forward) but bbox_head.anchor_generator.strides is '
        '[8, 16, 32, 64, 128]: change the neck so that it outputs the anchor strides '
        '(its output count and first stride: e.g. FPN num_outs / start_level / '
        'add_extra_convs, HRFPN num_outs / stride); the anchors cannot follow the '
        'neck instead: its stride-4 map is finer than the stuff head takes (stride '
        '>= 8, stuff_head.num_upsamples >= 1).')
