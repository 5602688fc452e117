"""SpatialFlow's dense head: four parallel towers bridged by spatial information flows.

RetinaNet's box and class towers, plus a stuff tower and a mask tower on the finest
``num_panoptic_levels`` FPN levels (P3..P5 with the default RetinaNet neck). The box
(regression) tower is the source of every flow (Chen et al., SpatialFlow, TCSVT 2020):

* depth i: ``flow_i = Conv3x3(reg_i)`` (linear, no activation) is added to the input
  of the i-th classification conv and of the i-th stuff conv;
* last depth: ``Conv3x3(reg_last) + Conv3x3(stuff_last)`` is added to the input of
  the mask tower.

P6/P7 run box + class (with its flows) only. Anchors, focal loss, box coder, target
assignment and post-processing are RetinaNet's (:class:`~mmdet.models.RetinaHead`);
this class only changes the towers and returns the extra stuff / mask features.
"""
from typing import List, Optional, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmcv.ops import ModulatedDeformConv2d
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor


class FlowGuidedDeformConv(nn.Module):
    """3x3 modulated deformable conv + norm + ReLU whose offsets come from a flow.

    The DCN variant of SpatialFlow: the offsets and modulation masks are predicted
    from the flow tensor (the regression tower's information), not from the conv's
    own input. The offset conv starts at zero, so at initialisation the layer is an
    ordinary 3x3 conv with modulation 0.5.

    Args:
        in_channels: channels of ``x``.
        out_channels: output channels.
        guide_channels: channels of the flow tensor the offsets are computed from.
        norm_cfg: mmcv norm config or None.
    """

    def __init__(self, in_channels: int, out_channels: int, guide_channels: int,
                 norm_cfg: OptConfigType = None) -> None:
        super().__init__()
        self.conv = ModulatedDeformConv2d(
            in_channels, out_channels, 3, padding=1, bias=norm_cfg is None)
        # 2 * 9 offsets + 9 modulation scalars per output pixel.
        self.conv_offset = nn.Conv2d(guide_channels, 27, 3, padding=1)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1] if norm_cfg else None
        self.activate = build_activation_layer(dict(type='ReLU', inplace=True))

    def init_offsets(self) -> None:
        """Zero the offset conv (called after the head's Normal init)."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        """x: (N, in_channels, H, W), guide: (N, guide_channels, H, W)
        -> (N, out_channels, H, W)."""
        out = self.conv_offset(guide)
        offset, mask = out[:, :18], out[:, 18:].sigmoid()
        x = self.conv(x, offset.contiguous(), mask.contiguous())
        if self.norm is not None:
            x = self.norm(x)
        return self.activate(x)


@MODELS.register_module()
class SpatialFlowHead(RetinaHead):
    """RetinaNet head with stuff and mask towers and spatial information flows.

    Args:
        num_classes: number of thing classes (the detection classes).
        in_channels: channels of every FPN level.
        stacked_convs: depth of the box, class and stuff towers (4 in the paper).
        mask_convs: depth of the mask tower (1 in the paper).
        num_panoptic_levels: how many of the finest levels get the stuff and mask
            towers (3: P3..P5).
        with_flows: False gives the "no flows" ablation: four independent towers.
        dcn: True replaces the class and stuff tower convs by modulated deformable
            convs whose offsets are predicted from the flows (needs ``with_flows``).
        **kwargs: everything :class:`~mmdet.models.RetinaHead` takes (anchor
            generator, losses, conv/norm cfg, feat_channels, train/test cfg, ...).

    ``forward(x)`` with ``x`` the FPN levels ``(N, in_channels, H_l, W_l)`` returns
    ``(cls_scores, bbox_preds, stuff_feats, mask_feats)``: RetinaNet's outputs for
    every level (``(N, A * num_classes, H_l, W_l)`` and ``(N, A * 4, H_l, W_l)``),
    and for the first ``num_panoptic_levels`` levels the stuff-tower and mask-tower
    features, ``(N, feat_channels, H_l, W_l)`` each.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 4,
                 mask_convs: int = 1,
                 num_panoptic_levels: int = 3,
                 with_flows: bool = True,
                 dcn: bool = False,
                 **kwargs) -> None:
        if stacked_convs < 1:
            raise ValueError(
                f'SpatialFlowHead needs stacked_convs >= 1 (got {stacked_convs}): '
                'the flows start from the regression tower convs.')
        if mask_convs < 1:
            raise ValueError(f'SpatialFlowHead needs mask_convs >= 1 (got {mask_convs}).')
        if dcn and not with_flows:
            raise ValueError('SpatialFlowHead(dcn=True) takes its deformable offsets '
                             'from the flows: set with_flows=True or dcn=False.')
        # Read by _init_layers, which AnchorHead.__init__ calls.
        self.num_mask_convs = mask_convs
        self.num_panoptic_levels = num_panoptic_levels
        self.with_flows = with_flows
        self.dcn = dcn
        super().__init__(num_classes, in_channels, stacked_convs=stacked_convs,
                         **kwargs)
        num_levels = self.prior_generator.num_levels
        if not 1 <= num_panoptic_levels <= num_levels:
            raise ValueError(
                f'num_panoptic_levels={num_panoptic_levels} must be in [1, '
                f'{num_levels}] (the anchor generator has {num_levels} strides).')

    def _tower(self, num_convs: int) -> nn.ModuleList:
        """``num_convs`` 3x3 ConvModules, in_channels -> feat_channels -> ..."""
        return nn.ModuleList(
            ConvModule(self.in_channels if i == 0 else self.feat_channels,
                       self.feat_channels, 3, padding=1, conv_cfg=self.conv_cfg,
                       norm_cfg=self.norm_cfg)
            for i in range(num_convs))

    def _flows(self, out_channels: List[int]) -> nn.ModuleList:
        """Linear 3x3 convs from a feat_channels source to each target width."""
        return nn.ModuleList(
            nn.Conv2d(self.feat_channels, c, 3, padding=1) for c in out_channels)

    def _guided_tower(self) -> nn.ModuleList:
        """The DCN variant of a class / stuff tower (offsets from the flows)."""
        return nn.ModuleList(
            FlowGuidedDeformConv(self.in_channels if i == 0 else self.feat_channels,
                                 self.feat_channels, guide_channels=c,
                                 norm_cfg=self.norm_cfg)
            for i, c in enumerate(self._tower_in_channels()))

    def _tower_in_channels(self) -> List[int]:
        return [self.in_channels] + [self.feat_channels] * (self.stacked_convs - 1)

    def _init_layers(self) -> None:
        """RetinaNet's box / class towers and predictors + stuff, mask and flows."""
        super()._init_layers()
        if self.dcn:
            self.cls_convs = self._guided_tower()
            self.stuff_convs = self._guided_tower()
        else:
            self.stuff_convs = self._tower(self.stacked_convs)
        self.mask_convs = self._tower(self.num_mask_convs)
        if self.with_flows:
            # The flow into the i-th conv matches that conv's input width.
            self.cls_flows = self._flows(self._tower_in_channels())
            self.stuff_flows = self._flows(self._tower_in_channels())
            self.mask_flow_reg = self._flows([self.in_channels])[0]
            self.mask_flow_stuff = self._flows([self.in_channels])[0]

    def init_weights(self) -> None:
        super().init_weights()
        if self.dcn:
            for layer in [*self.cls_convs, *self.stuff_convs]:
                layer.init_offsets()

    def forward(self, x: Tuple[Tensor, ...]
                ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], List[Tensor]]:
        """See the class docstring for shapes."""
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(
                f'SpatialFlowHead got {len(x)} feature levels but its anchor '
                f'generator has {self.prior_generator.num_levels} strides: make the '
                'neck\'s num_outs match anchor_generator.strides.')
        cls_scores, bbox_preds, stuff_feats, mask_feats = [], [], [], []
        for level, feat in enumerate(x):
            outs = self.forward_single(feat, level < self.num_panoptic_levels)
            cls_scores.append(outs[0])
            bbox_preds.append(outs[1])
            if level < self.num_panoptic_levels:
                stuff_feats.append(outs[2])
                mask_feats.append(outs[3])
        return cls_scores, bbox_preds, stuff_feats, mask_feats

    def _tower_step(self, conv: nn.Module, feat: Tensor, flow: Optional[Tensor]
                    ) -> Tensor:
        """One class / stuff conv with the flow added to its input."""
        if flow is None:
            return conv(feat)
        if self.dcn:
            return conv(feat + flow, flow)
        return conv(feat + flow)

    def forward_single(self, x: Tensor, panoptic: bool = False
                       ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """One level: x (N, in_channels, H, W) -> cls score, box deltas, and (when
        ``panoptic``) the stuff and mask features, else None for those two."""
        cls_feat = reg_feat = stuff_feat = x
        for i in range(self.stacked_convs):
            reg_feat = self.reg_convs[i](reg_feat)
            cls_flow = self.cls_flows[i](reg_feat) if self.with_flows else None
            cls_feat = self._tower_step(self.cls_convs[i], cls_feat, cls_flow)
            if panoptic:
                stuff_flow = (self.stuff_flows[i](reg_feat)
                              if self.with_flows else None)
                stuff_feat = self._tower_step(self.stuff_convs[i], stuff_feat,
                                              stuff_flow)
        cls_score = self.retina_cls(cls_feat)
        bbox_pred = self.retina_reg(reg_feat)
        if not panoptic:
            return cls_score, bbox_pred, None, None
        mask_feat = x
        if self.with_flows:
            mask_feat = (mask_feat + self.mask_flow_reg(reg_feat)
                         + self.mask_flow_stuff(stuff_feat))
        for conv in self.mask_convs:
            mask_feat = conv(mask_feat)
        return cls_score, bbox_pred, stuff_feat, mask_feat
