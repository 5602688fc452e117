"""SpatialFlow's stuff head: the stuff-tower features merged at stride 4."""
from typing import Sequence

from mmdet.models.layers import ConvUpsample
from mmdet.models.seg_heads import PanopticFPNHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import ModuleList


@MODELS.register_module()
class SpatialFlowStuffHead(PanopticFPNHead):
    """Semantic head over the stuff-tower outputs of P3..P5.

    Level l goes through ``num_upsamples[l]`` blocks of [3x3 conv ``inner_channels``
    + GroupNorm + ReLU + 2x bilinear up] (1, 2, 3 for strides 8, 16, 32: all reach
    stride 4); the levels are summed and a 1x1 conv predicts the stuff classes plus
    one merged "things" class (index ``num_stuff_classes``), as in Panoptic FPN.
    Loss, label remapping (things -> one class, 255 ignored) and inference are
    :class:`~mmdet.models.seg_heads.PanopticFPNHead`'s.

    Args:
        num_things_classes: thing classes of the dataset (merged into one class).
        num_stuff_classes: stuff classes of the dataset.
        in_channels: channels of the stuff-tower features.
        inner_channels: width of the merge branch (128).
        num_upsamples: 2x upsampling blocks per input level, finest first; input
            level l must have stride ``4 * 2 ** num_upsamples[l]``.
        loss_seg: CE with ``ignore_index=255``; SpatialFlow weighs it 0.25.

    ``forward(x)``: ``x`` = (N, in_channels, H/8, W/8), (N, ., H/16, W/16), ...
    -> ``dict(seg_preds=(N, num_stuff_classes + 1, H/4, W/4), seg_feats=...)``.
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
                 init_cfg: OptMultiConfig = None) -> None:
        if not num_upsamples or any(n < 1 for n in num_upsamples):
            raise ValueError(f'num_upsamples={tuple(num_upsamples)}: give one entry '
                             '>= 1 per input level (1, 2, 3 for P3, P4, P5).')
        # start_level=0 makes the parent's label rescale factor 1/4: our logits are
        # at stride 4 like Panoptic FPN's. end_level=0 builds no parent branches.
        super().__init__(num_things_classes=num_things_classes,
                         num_stuff_classes=num_stuff_classes,
                         in_channels=in_channels, inner_channels=inner_channels,
                         start_level=0, end_level=0, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, loss_seg=loss_seg, init_cfg=init_cfg)
        self.conv_upsample_layers = ModuleList(
            ConvUpsample(in_channels, inner_channels, num_layers=n, num_upsample=n,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for n in num_upsamples)
        # The parent's forward walks x[start_level + i] for i < num_stages.
        self.num_stages = len(self.conv_upsample_layers)
