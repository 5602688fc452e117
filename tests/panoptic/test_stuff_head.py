"""SpatialFlowStuffHead: the official StuffHead's structure, upsampling, loss
normalisation and single-scale label map (argmax at input size, OpenCV nearest)."""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData

import mmext  # noqa: F401
from mmdet.structures import DetDataSample

from mmext.panoptic import SpatialFlowStuffHead

T, S = 3, 4   # thing / stuff classes


def _head(**kwargs):
    torch.manual_seed(0)
    head = SpatialFlowStuffHead(num_things_classes=T, num_stuff_classes=S, in_channels=8,
                                inner_channels=8,
                                norm_cfg=dict(type='GN', num_groups=2), **kwargs)
    head.init_weights()
    for p in head.parameters():  # non-trivial logits
        torch.nn.init.normal_(p, 0, 0.3)
    return head


def _feats(h=8, w=12):
    torch.manual_seed(1)
    return [torch.randn(2, 8, h // 2 ** i, w // 2 ** i) for i in range(3)]


def test_structure_is_the_official_stuff_head():
    head = _head()
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    want = {'conv_logits.weight': (S + 1, 8, 1, 1), 'conv_logits.bias': (S + 1, )}
    for level in range(3):
        for j in range(level + 1):  # ConvModule at 0, 2, 4; Upsample between
            want.update({f'lateral_convs.{level}.{2 * j}.conv.weight': (8, 8, 3, 3),
                         f'lateral_convs.{level}.{2 * j}.gn.weight': (8, ),
                         f'lateral_convs.{level}.{2 * j}.gn.bias': (8, )})
    assert shapes == want
    ups = [m for m in head.lateral_convs.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 6 and all(u.align_corners and u.mode == 'bilinear' for u in ups)


def test_forward_sums_the_levels_at_stride_4():
    head = _head().eval()
    x = _feats()
    with torch.no_grad():
        out = head(x)
        want = sum(layer(level) for layer, level in zip(head.lateral_convs, x))
    assert torch.equal(out['feats'], want)
    assert out['seg_preds'].shape == (2, S + 1, 16, 24)
    assert torch.equal(out['seg_preds'], head.conv_logits(want))


def _samples(gt, img_shapes):
    samples = []
    for g, shape in zip(gt, img_shapes):
        s = DetDataSample(metainfo=dict(img_shape=shape, pad_shape=tuple(g.shape)))
        s.gt_sem_seg = PixelData(sem_seg=g[None])
        samples.append(s)
    return samples


def test_loss_is_ce_at_input_size_over_the_image_pixels():
    """Official: CE of the 4x (align_corners) upsampled logits, things -> one class,
    255 ignored, summed and divided by the pixels inside img_shape (void included,
    padding excluded), times 0.25."""
    head = _head()
    x = _feats()   # stride 8 level 8x12 -> input 64x96
    gen = torch.Generator().manual_seed(0)
    gt = torch.randint(0, T + S, (2, 64, 96), generator=gen)
    gt[0, :5] = 255
    gt[1, 40:] = 255    # padding of image 1
    gt[1, :, 30:] = 255
    img_shapes = [(64, 96), (40, 30)]
    loss = head.loss(x, _samples(gt, img_shapes))['loss_seg']

    logits = F.interpolate(head(x)['seg_preds'], size=(64, 96), mode='bilinear',
                           align_corners=True)
    target = torch.where(gt < T, S, gt - T)
    target[gt == 255] = 255
    ce = F.cross_entropy(logits, target, ignore_index=255, reduction='none')
    ce[1, 40:] = 0
    ce[1, :, 30:] = 0
    want = 0.25 * ce.sum() / (64 * 96 + 40 * 30)
    assert torch.allclose(loss, want, rtol=1e-5)


def test_loss_needs_a_padded_gt_of_input_size():
    head = _head()
    gt = torch.zeros(2, 60, 96, dtype=torch.long)
    with pytest.raises(ValueError, match='pad_size_divisor=32'):
        head.loss(_feats(), _samples(gt, [(60, 96), (60, 96)]))


def test_predict_labels_is_argmax_at_input_size_then_opencv_nearest():
    head = _head().eval()
    x = _feats()
    metas = [dict(img_shape=(61, 91), ori_shape=(123, 187)),
             dict(img_shape=(40, 30), ori_shape=(40, 30))]
    with torch.no_grad():
        labels = head.predict_labels(x, metas)
        full = F.interpolate(head(x)['seg_preds'], scale_factor=4, mode='bilinear',
                             align_corners=True).argmax(1)
    for i, meta in enumerate(metas):
        h, w = meta['img_shape']
        crop = full[i, :h, :w].numpy().astype(np.uint8)
        oh, ow = meta['ori_shape']
        want = cv2.resize(crop, (ow, oh), interpolation=cv2.INTER_NEAREST)
        assert labels[i].dtype == torch.int64
        np.testing.assert_array_equal(labels[i].numpy(), want)


@pytest.mark.parametrize('src,dst', [(800, 427), (1333, 640), (751, 500), (1024, 2048),
                                     (997, 1501)])
def test_nearest_resize_matches_opencv_on_real_sizes(src, dst):
    from mmext.panoptic.stuff_head import _resize_nearest
    labels = torch.arange(src).remainder(251).reshape(src, 1).repeat(1, 3)
    got = _resize_nearest(labels, (dst, 3))
    want = cv2.resize(labels.numpy().astype(np.uint8), (3, dst),
                      interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(got.numpy(), want)


def test_predict_logits_for_tta_are_align_corners_resized():
    head = _head().eval()
    x = _feats()
    metas = [dict(img_shape=(61, 91), ori_shape=(90, 130))] * 2
    with torch.no_grad():
        out = head.predict(x, metas, rescale=True)
        full = F.interpolate(head(x)['seg_preds'], scale_factor=4, mode='bilinear',
                             align_corners=True)
        want = F.interpolate(full[:1, :, :61, :91], size=(90, 130), mode='bilinear',
                             align_corners=True)[0]
    assert out[0].shape == (S + 1, 90, 130)
    assert torch.allclose(out[0], want)
