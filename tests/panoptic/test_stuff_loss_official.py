"""SpatialFlowStuffHead's two loss modes against an independent transcription of the
official stuff loss, and the configs that choose them.

The official loss (chensnathan/SpatialFlow at 3994fb1,
mmdet/models/stuff_heads/stuff_head.py:158-171, with mmdet v2.3's
``cross_entropy`` and ``weight_reduce_loss``, mmdet/models/losses/
cross_entropy_loss.py and utils.py) multiplies the (N, H, W) per-pixel CE by an
(N, 1, H, W) weight that is 1 inside image 0's ``img_shape`` for every image, sums
the (N, N, H, W) broadcast and divides by the weight's nonzero count. Its targets
arrive padded with 0 (mmdet v2.3's Pad pads seg maps with mmcv.impad's default 0,
and mmcv's collate pads the stacked batch with 0).
"""
import glob
import os.path as osp
from typing import List, Sequence, Tuple

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData

import mmext  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from mmext.panoptic import SpatialFlowStuffHead
from tests.tool_runner import ROOT

T, S = 3, 4          # thing / stuff classes
H, W = 64, 96        # padded input size of the test batches
OFFICIAL_THINGS = 2  # the official "things-other" channel (COCO: 36, mmext: last)
# Official channel c holds mmext channel PERM[c] (mmext: stuff 0..S-1, things last).
PERM = list(range(OFFICIAL_THINGS)) + [S] + list(range(OFFICIAL_THINGS, S))


def official_stuff_loss(logits: torch.Tensor, gt: torch.Tensor,
                        img_shapes: Sequence[Tuple[int, int, int]],
                        loss_weight: float = 0.25) -> torch.Tensor:
    """The official ``StuffHead.loss`` in plain torch.

    logits: (N, C, H, W) score maps in the official channel order.
    gt: (N, 1, H, W) official labels as the official pipeline delivers them
        (void 255, 0 outside each image).
    img_shapes: ``img_metas[i]['img_shape']`` = (h, w, 3); only image 0's is read.
    """
    box_h, box_w, _ = img_shapes[0]
    mask = torch.zeros(gt.shape, dtype=torch.float32)        # (N, 1, H, W)
    mask[..., :box_h, :box_w] = 1.
    denominator = max(float((mask > 0).sum()), 1.)
    per_pixel = F.cross_entropy(logits.float(), gt[:, 0].long(), reduction='none',
                                ignore_index=255)              # (N, H, W)
    product = per_pixel * mask                                 # -> (N, N, H, W)
    assert product.shape == (gt.shape[0], ) + tuple(per_pixel.shape)
    return loss_weight * product.sum() / denominator


def _head(loss_mode: str) -> SpatialFlowStuffHead:
    torch.manual_seed(0)
    head = SpatialFlowStuffHead(num_things_classes=T, num_stuff_classes=S,
                                in_channels=8, inner_channels=8,
                                norm_cfg=dict(type='GN', num_groups=2),
                                loss_mode=loss_mode)
    for p in head.parameters():  # non-trivial logits
        torch.nn.init.normal_(p, 0, 0.3)
    return head


def _batch(img_shapes: List[Tuple[int, int]], seed: int = 0):
    """Features of an (H, W) padded batch and its gt_sem_seg as mmdet 3 delivers
    it: panoptic labels (things [0, T), stuff T + s), some void inside each image,
    255 outside it (DetDataPreprocessor's seg_pad_value)."""
    n = len(img_shapes)
    gen = torch.Generator().manual_seed(seed)
    x = [torch.randn(n, 8, H // 8 // 2 ** i, W // 8 // 2 ** i, generator=gen)
         for i in range(3)]
    gt = torch.randint(0, T + S, (n, H, W), generator=gen)
    gt[torch.rand(n, H, W, generator=gen) < 0.1] = 255
    for i, (h, w) in enumerate(img_shapes):
        gt[i, h:] = 255
        gt[i, :, w:] = 255
    samples = []
    for g, (h, w) in zip(gt, img_shapes):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(H, W)))
        s.gt_sem_seg = PixelData(sem_seg=g[None])
        samples.append(s)
    return x, gt, samples


def _to_official(gt: torch.Tensor, img_shapes: List[Tuple[int, int]]) -> torch.Tensor:
    """mmdet panoptic labels -> the official (N, 1, H, W) target: stuff s at its
    official channel, things at OFFICIAL_THINGS, void 255, 0 outside each image."""
    out = torch.full_like(gt, 255)
    stuff = gt - T
    out = torch.where((gt >= T) & (gt < T + S),
                      torch.where(stuff < OFFICIAL_THINGS, stuff, stuff + 1), out)
    out = torch.where(gt < T, OFFICIAL_THINGS, out)
    for i, (h, w) in enumerate(img_shapes):
        out[i, h:] = 0
        out[i, :, w:] = 0
    return out[:, None]


def _logits(head: SpatialFlowStuffHead, x) -> torch.Tensor:
    """(N, S + 1, H, W): the official 4x align_corners upsampling of the head."""
    return F.interpolate(head(x)['seg_preds'], scale_factor=4, mode='bilinear',
                         align_corners=True)


CASES = {
    'N=1': [(50, 70)],
    'N=2 one shape': [(64, 80), (64, 80)],
    'N=2 image 0 smaller': [(40, 60), (64, 96)],
    'N=2 image 0 larger': [(64, 96), (40, 30)],
    'N=4 one shape': [(56, 96)] * 4,
    'N=4 mixed': [(48, 90), (64, 64), (20, 96), (64, 96)],
}


def _loss_and_logits(mode, img_shapes):
    """The head's loss in ``mode`` on a batch of ``img_shapes``, its 4x-upsampled
    logits at the padded size and the (N, H, W) labels."""
    head = _head(mode)
    x, gt, samples = _batch(img_shapes)
    with torch.no_grad():
        return head.loss(x, samples)['loss_seg'], _logits(head, x), gt


@pytest.mark.parametrize('img_shapes', CASES.values(), ids=CASES.keys())
def test_official_mode_is_the_official_expression(img_shapes):
    loss, logits, gt = _loss_and_logits('official', img_shapes)
    want = official_stuff_loss(logits[:, PERM], _to_official(gt, img_shapes),
                               [(h, w, 3) for h, w in img_shapes])
    assert torch.allclose(loss, want, rtol=1e-5, atol=0), (loss, want)


@pytest.mark.parametrize('img_shapes', CASES.values(), ids=CASES.keys())
def test_per_image_mode_is_the_mean_over_each_images_own_pixels(img_shapes):
    loss, logits, gt = _loss_and_logits('per_image', img_shapes)
    target = torch.where(gt < T, S, gt - T)
    target[gt == 255] = 255
    ce = F.cross_entropy(logits, target, ignore_index=255, reduction='none')
    total = sum(ce[i, :h, :w].sum() for i, (h, w) in enumerate(img_shapes))
    want = 0.25 * total / sum(h * w for h, w in img_shapes)
    assert torch.allclose(loss, want, rtol=1e-5, atol=0), (loss, want)


@pytest.mark.parametrize('n', [1, 2, 4])
def test_official_is_n_times_per_image_for_one_image_shape(n):
    """The official strength: at 2 images per GPU, 2 x 0.25 = 0.5."""
    x, _, samples = _batch([(56, 88)] * n)
    with torch.no_grad():
        official = _head('official').loss(x, samples)['loss_seg']
        per_image = _head('per_image').loss(x, samples)['loss_seg']
    assert torch.allclose(official, n * per_image, rtol=1e-5, atol=0)


def test_official_closed_form_for_mixed_shapes():
    """w * sum_i sum_{image 0's box} ce_i / (h0 * w0), padding inside the box
    scored against label 0: the transcription and the formula agree."""
    img_shapes = [(64, 96), (40, 30)]
    head = _head('official')
    x, gt, _ = _batch(img_shapes)
    with torch.no_grad():
        logits = _logits(head, x)[:, PERM]
    official_gt = _to_official(gt, img_shapes)
    ce = F.cross_entropy(logits, official_gt[:, 0], ignore_index=255,
                         reduction='none')
    want = 0.25 * ce[:, :64, :96].sum() / (64 * 96)
    got = official_stuff_loss(logits, official_gt, [(64, 96, 3), (40, 30, 3)])
    assert torch.allclose(got, want, rtol=1e-6)
    # Image 1's padding inside image 0's box carries a real CE (label 0).
    assert (ce[1, 40:, :] > 0).all()


def test_unknown_loss_mode_is_refused():
    with pytest.raises(ValueError, match="loss_mode='mean'.*'official', 'per_image'"):
        _head('mean')


REPRODUCTION = sorted(glob.glob(osp.join(ROOT, 'configs/spatialflow/*.py')))
DEMOS = sorted(glob.glob(osp.join(ROOT, 'configs/demo/spatialflow_*.py')))


@pytest.mark.parametrize('path', REPRODUCTION, ids=osp.basename)
def test_reproduction_configs_train_with_the_official_loss(path):
    cfg = Config.fromfile(path)
    assert cfg.model.stuff_head.loss_mode == 'official'
    assert cfg.model.stuff_head.loss_seg.loss_weight == 0.25  # the official value
    assert MODELS.build(cfg.model.stuff_head).loss_mode == 'official'


@pytest.mark.parametrize('path', DEMOS, ids=osp.basename)
def test_demo_configs_keep_the_per_image_mean(path):
    """The demo trains 8 images per GPU (official mode: 8 x the weight); its
    documented numbers were trained with the per-image mean."""
    cfg = Config.fromfile(path)
    assert cfg.model.stuff_head.get('loss_mode', 'per_image') == 'per_image'
    assert MODELS.build(cfg.model.stuff_head).loss_mode == 'per_image'
