"""SpatialFlow's stuff head: the stuff-tower features merged at stride 4.

As the official ``StuffHead`` (chensnathan/SpatialFlow,
``mmdet/models/stuff_heads/stuff_head.py``): level ``l`` goes through
``num_upsamples[l]`` blocks of [3x3 conv + GroupNorm + ReLU + 2x bilinear up
(``align_corners=True``)], the levels are summed, a 1x1 conv predicts the stuff
classes plus one merged "things" class, and the logits are upsampled 4x (bilinear,
``align_corners=True``) to the padded input size, where the loss is computed and the
label map is taken. Parameter names follow the official ones (``lateral_convs.l.2j``
are the ConvModules), so official weights map one to one.

The loss has two modes (``loss_mode``): ``'official'``, the official
``StuffHead.loss`` term for term (what the reproduction configs train with), and
``'per_image'``, a per-pixel mean over each image's own pixels. See
:meth:`SpatialFlowStuffHead.loss`.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.seg_heads.base_semantic_head import BaseSemanticHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

_IGNORE_INDEX = 255
# The official Pad (mmcv.impad) and collate fill gt_semantic_seg with 0: the
# official label 0, COCO's first stuff class ('banner'), our stuff label 0.
_OFFICIAL_SEG_PAD_LABEL = 0
LOSS_MODES = ('official', 'per_image')


@MODELS.register_module()
class SpatialFlowStuffHead(BaseSemanticHead):
    """Semantic head over the stuff-tower outputs of P3..P5.

    Label convention (mmdet's Panoptic FPN): ``[0, num_stuff_classes)`` stuff,
    ``num_stuff_classes`` the merged "things" class, 255 ignored. The ground truth
    (``gt_sem_seg``: things ``[0, num_things)``, stuff ``num_things + s``) is
    remapped to it in :meth:`loss`.

    Args:
        num_things_classes: thing classes of the dataset (merged into one class).
        num_stuff_classes: stuff classes of the dataset.
        in_channels: channels of the stuff-tower features.
        inner_channels: width of the merge branch (128).
        num_upsamples: 2x upsampling blocks per input level, finest first; input
            level l must have stride ``4 * 2 ** num_upsamples[l]``.
        conv_cfg / norm_cfg: of the merge-branch ConvModules (GN(32) officially).
        loss_seg: CE with ``ignore_index=255``; SpatialFlow weighs it 0.25.
        loss_mode: how the per-pixel CE is reduced (details in :meth:`loss`).
            ``'official'``: the official ``StuffHead.loss`` as it runs: the
            sum of the CE inside image 0's ``img_shape`` box over EVERY image,
            divided by that box's area, i.e. N (images per GPU) times a
            per-pixel mean; padding inside the box is trained as stuff label 0.
            The reproduction configs set it. ``'per_image'`` (default, kept for
            the demo configs and existing users): the CE summed over each
            image's own pixels divided by their total count, a mean that does
            not depend on the batch size or the order of the images.

    ``forward(x)``: ``x`` = (N, in_channels, H/8, W/8), (N, ., H/16, W/16), ...
    -> ``dict(seg_preds=(N, num_stuff_classes + 1, H/4, W/4), feats=(N,
    inner_channels, H/4, W/4))`` (logits before the final 4x upsampling).
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 in_channels: int = 256,
                 inner_channels: int = 128,
                 num_upsamples: Sequence[int] = (1, 2, 3),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 loss_seg: ConfigType = dict(
                     type='CrossEntropyLoss', ignore_index=255, loss_weight=0.25),
                 loss_mode: str = 'per_image',
                 init_cfg: OptMultiConfig = dict(type='Kaiming', layer='Conv2d')
                 ) -> None:
        if loss_mode not in LOSS_MODES:
            raise ValueError(f'SpatialFlowStuffHead: loss_mode={loss_mode!r}; choose '
                             f'one of {LOSS_MODES} (the official StuffHead.loss, or '
                             'a per-pixel mean over each image\'s own pixels).')
        if not num_upsamples or any(n < 1 for n in num_upsamples):
            raise ValueError(f'num_upsamples={tuple(num_upsamples)}: give one entry '
                             '>= 1 per input level (1, 2, 3 for P3, P4, P5).')
        if loss_seg.get('ignore_index', None) != _IGNORE_INDEX:
            raise ValueError('SpatialFlowStuffHead: loss_seg needs ignore_index=255 '
                             '(void pixels of gt_sem_seg), got '
                             f'{loss_seg.get("ignore_index")}.')
        super().__init__(num_classes=num_stuff_classes + 1, seg_rescale_factor=1.0,
                         loss_seg=loss_seg, init_cfg=init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.loss_mode = loss_mode
        self.num_stages = len(num_upsamples)
        self.lateral_convs = nn.ModuleList()
        for num_up in num_upsamples:
            layers = []
            for j in range(num_up):
                layers.append(ConvModule(in_channels if j == 0 else inner_channels,
                                         inner_channels, 3, padding=1,
                                         conv_cfg=conv_cfg, norm_cfg=norm_cfg))
                layers.append(nn.Upsample(scale_factor=2, mode='bilinear',
                                          align_corners=True))
            self.lateral_convs.append(nn.Sequential(*layers))
        self.conv_logits = nn.Conv2d(inner_channels, self.num_classes, 1)

    def forward(self, x: Sequence[Tensor]) -> Dict[str, Tensor]:
        """See the class docstring for shapes."""
        if len(x) < self.num_stages:
            raise ValueError(f'SpatialFlowStuffHead has {self.num_stages} branches but '
                             f'got {len(x)} feature levels.')
        feats = sum(layer(level) for layer, level in zip(self.lateral_convs, x))
        return dict(seg_preds=self.conv_logits(feats), feats=feats)

    @staticmethod
    def upsample_logits(seg_preds: Tensor) -> Tensor:
        """(N, C, h, w) stride-4 logits -> (N, C, 4h, 4w), the official
        ``nn.Upsample(scale_factor=4, mode='bilinear', align_corners=True)``."""
        return F.interpolate(seg_preds, scale_factor=4, mode='bilinear',
                             align_corners=True)

    def _set_things_to_void(self, gt: Tensor) -> Tensor:
        """gt: things [0, T) -> S, stuff T + s -> s, anything else -> 255."""
        things, stuff = self.num_things_classes, self.num_stuff_classes
        gt = gt.long()
        out = torch.full_like(gt, _IGNORE_INDEX)
        out = torch.where((gt >= 0) & (gt < things), stuff, out)
        is_stuff = (gt >= things) & (gt < things + stuff)
        return torch.where(is_stuff, gt - things, out)

    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList
             ) -> Dict[str, Tensor]:
        """CE of the logits upsampled to the padded input size; things are one
        class, void (255) pixels contribute 0 but are counted.

        With ``ce[i]`` the (H_pad, W_pad) per-pixel CE of image i, ``w`` the
        ``loss_seg`` weight, ``N`` the images in the batch, ``box(h, w)`` the
        pixels ``[0, h) x [0, w)`` and ``(h_i, w_i)`` = ``img_shape`` of image i:

        * ``'per_image'``:
          ``w * sum_i sum_{box(h_i, w_i)} ce[i] / sum_i h_i * w_i``.
        * ``'official'`` (chensnathan/SpatialFlow at 3994fb1,
          ``mmdet/models/stuff_heads/stuff_head.py:158-171`` with its mmdet v2.3
          ``cross_entropy`` / ``weight_reduce_loss``): the weight is (N, 1, H, W),
          1 inside ``box(h_0, w_0)`` of image 0 for every image; times the
          (N, H, W) CE it broadcasts to (N, N, H, W), so the sum counts each
          image's box N times, and ``avg_factor`` counts the weight's
          N * h_0 * w_0 nonzeros:
          ``w * N * sum_i sum_{box(h_0, w_0)} ce[i] / (N * h_0 * w_0)``
          = ``w * sum_i sum_{box(h_0, w_0)} ce[i] / (h_0 * w_0)``. That is N
          times the per-pixel mean: at the official 2 images per GPU an
          effective weight of 0.5 for the configured 0.25. Pixels of image i
          outside its own ``img_shape`` (padding) but inside image 0's box are
          trained as label 0 (the official Pad / collate fill value); pixels
          of image i outside image 0's box are not trained. For images of one
          shape it is exactly N times ``'per_image'``; for N = 1 the two modes
          are the same.

        ``batch_data_samples[i].gt_sem_seg.sem_seg``: (1, H_pad, W_pad) labels
        (mmdet's panoptic labels, padded with 255); ``metainfo['img_shape']``.
        """
        logits = self.upsample_logits(self(x)['seg_preds'])
        gt = torch.stack([s.gt_sem_seg.sem_seg[0] for s in batch_data_samples])
        if gt.shape[-2:] != logits.shape[-2:]:
            raise ValueError(
                f'SpatialFlowStuffHead: gt_sem_seg is {tuple(gt.shape[-2:])} but the '
                f'4x upsampled logits are {tuple(logits.shape[-2:])}; pad the batch '
                'with pad_size_divisor=32 and pad_seg=True in the data preprocessor.')
        gt = self._set_things_to_void(gt)
        img_shapes = [tuple(s.metainfo['img_shape'][:2]) for s in batch_data_samples]
        weight = torch.zeros_like(gt, dtype=logits.dtype)
        if self.loss_mode == 'official':
            inside = torch.zeros_like(gt, dtype=torch.bool)
            for i, (h, w) in enumerate(img_shapes):
                inside[i, :h, :w] = True
            gt = torch.where(inside, gt, _OFFICIAL_SEG_PAD_LABEL)
            h0, w0 = img_shapes[0]
            weight[:, :h0, :w0] = 1
            # N * sum / (N * h0 * w0): the N's of the broadcast and of the
            # official avg_factor cancel (see the docstring).
            avg_factor = max(h0 * w0, 1)
        else:
            for i, (h, w) in enumerate(img_shapes):
                weight[i, :h, :w] = 1
            avg_factor = weight.sum().clamp(min=1)
        loss = self.loss_seg(logits, gt, weight=weight, avg_factor=avg_factor)
        return dict(loss_seg=loss)

    def predict(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                rescale: bool = True) -> List[Tensor]:
        """Per image logits (C, H, W): at the padded input size cropped to
        ``img_shape``, and with ``rescale`` bilinearly resized (align_corners=True)
        to ``ori_shape``, as the official multi-scale test (``get_stuff_map_aug``)."""
        logits = self.upsample_logits(self(x)['seg_preds'])
        out = []
        for i, meta in enumerate(batch_img_metas):
            h, w = meta['img_shape'][:2]
            seg = logits[i, :, :h, :w]
            if rescale:
                seg = F.interpolate(seg[None], size=tuple(meta['ori_shape'][:2]),
                                    mode='bilinear', align_corners=True)[0]
            out.append(seg)
        return out

    def predict_labels(self, x: Sequence[Tensor], batch_img_metas: List[dict]
                       ) -> List[Tensor]:
        """Per image (H, W) int64 labels at ``ori_shape``, as the official single
        scale test: argmax at the padded input size, crop to ``img_shape``,
        nearest resize (OpenCV's ``INTER_NEAREST`` indices) to ``ori_shape``."""
        return self.labels_from_logits(self(x)['seg_preds'], batch_img_metas)

    def labels_from_logits(self, seg_preds: Tensor, batch_img_metas: List[dict]
                           ) -> List[Tensor]:
        """:meth:`predict_labels` from the stride-4 logits (N, S+1, h, w) (e.g. an
        exported network's ``stuff_logits``)."""
        labels = self.upsample_logits(seg_preds).argmax(dim=1)
        out = []
        for i, meta in enumerate(batch_img_metas):
            h, w = meta['img_shape'][:2]
            out.append(_resize_nearest(labels[i, :h, :w], tuple(meta['ori_shape'][:2])))
        return out


def _resize_nearest(labels: Tensor, size: Tuple[int, int]) -> Tensor:
    """(h, w) -> size, source index ``floor(dst * src / dst_size)`` in float64 as
    OpenCV's nearest resize (torch's float32 scale can pick a neighbour)."""
    out_h, out_w = size
    in_h, in_w = labels.shape
    if (in_h, in_w) == (out_h, out_w):
        return labels
    device = labels.device
    # OpenCV: ifx = 1 / (dsize / ssize), sx = floor(dx * ifx), capped at ssize - 1.
    rows = (torch.arange(out_h, dtype=torch.float64, device=device)
            * (1.0 / (out_h / in_h))).floor().long().clamp(max=in_h - 1)
    cols = (torch.arange(out_w, dtype=torch.float64, device=device)
            * (1.0 / (out_w / in_w))).floor().long().clamp(max=in_w - 1)
    return labels[rows][:, cols]
