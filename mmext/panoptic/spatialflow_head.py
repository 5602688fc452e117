"""SpatialFlow's dense head: four parallel towers bridged by spatial information flows.

RetinaNet's box and class towers, plus a stuff tower and a mask tower on the finest
``num_panoptic_levels`` FPN levels (P3..P5 with the default RetinaNet neck). The box
(regression) tower is the source of every flow (Chen et al., SpatialFlow, TCSVT 2020;
official code: chensnathan/SpatialFlow ``mmdet/models/dense_heads/spatialflow_head.py``):

* depth i: ``flow_i = ConvModule3x3(reg_i)`` (no activation, the head's conv/norm
  config) is added to the input of the i-th classification conv and of the i-th
  stuff conv, ``reg_i`` being the output of the i-th regression conv;
* last depth: ``x + flow(stuff_last) + flow(reg_last)`` is the input of the mask
  conv (``x`` the FPN level).

DCN variant (official R101-DCN): every classification and stuff conv and the first
mask conv are modulated deformable convs; the flow conv of that conv then outputs 27
channels (18 offsets + 9 modulation logits) computed from ``feature + reg_i`` (for the
mask conv: ``x + reg_last``), and nothing is added to the deformable conv's input
except, for the mask conv, the stuff -> mask flow.

P6/P7 run box + class (with its flows) only. Anchors, focal loss, box coder and target
assignment are RetinaNet's (:class:`~mmdet.models.RetinaHead`); the choice of the
candidates before NMS is mmdetection v2.3's, as in the official code (see
:meth:`SpatialFlowHead._predict_by_feat_single`).
"""
import copy
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.ops import ModulatedDeformConv2d
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

# 2 x 9 offsets + 9 modulation logits of a 3x3 modulated deformable conv.
_DCN_GUIDE_CHANNELS = 27


class ModulatedDeformConvModule(nn.Module):
    """3x3 modulated deformable conv + norm + ReLU whose offsets and masks are given.

    The official head builds ``ConvModule(conv_cfg=dict(type='ModulatedDeformConv'))``
    and calls it with ``(x, offset, mask)`` through a patched ``ConvModule.forward``;
    this module is that, with the same parameter names (``conv.weight``,
    ``conv.bias`` without norm, the norm under mmcv's name, e.g. ``gn``).

    Args:
        in_channels / out_channels: of the conv.
        norm_cfg: mmcv norm config or None (then the conv has a bias).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: OptConfigType = None) -> None:
        super().__init__()
        self.conv = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=1,
                                          bias=norm_cfg is None)
        self.norm_name = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        """x: (N, in_channels, H, W); guide: (N, 27, H, W), channels [0, 18) the
        offsets, [18, 27) the modulation logits (sigmoid applied here)
        -> (N, out_channels, H, W)."""
        offset = guide[:, :18].contiguous()
        mask = guide[:, 18:].sigmoid().contiguous()
        x = self.conv(x, offset, mask)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        return self.activate(x)


@MODELS.register_module()
class SpatialFlowHead(RetinaHead):
    """RetinaNet head with stuff and mask towers and spatial information flows.

    Args:
        num_classes: number of thing classes (the detection classes).
        in_channels: channels of every FPN level; must equal ``feat_channels``
            (flows and towers add the FPN level to tower features).
        stacked_convs: depth of the box, class and stuff towers (4 in the paper).
        mask_convs: depth of the mask tower (1 in the paper; convs after the first
            are plain 3x3 ConvModules).
        num_panoptic_levels: how many of the finest levels get the stuff and mask
            towers (3: P3..P5).
        with_flows: False gives the "no flows" ablation: four independent towers.
        dcn: the official DCN variant (module docstring; needs ``with_flows``).
        **kwargs: everything :class:`~mmdet.models.RetinaHead` takes (anchor
            generator, losses, ``conv_cfg`` / ``norm_cfg`` (towers AND flows),
            feat_channels, train/test cfg, ...).

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
                             'from the flow convs: set with_flows=True or dcn=False.')
        feat_channels = kwargs.get('feat_channels', 256)
        if in_channels != feat_channels:
            raise ValueError(
                f'SpatialFlowHead needs in_channels == feat_channels (got {in_channels} '
                f'and {feat_channels}): the stuff and mask towers start from the FPN '
                'level and the flows add tower features to it, as in the official head.')
        norm_cfg = kwargs.get('norm_cfg')
        if dcn and norm_cfg and norm_cfg.get('type') == 'GN' and \
                _DCN_GUIDE_CHANNELS % norm_cfg.get('num_groups', 1):
            raise ValueError(
                f'SpatialFlowHead(dcn=True): the offset flows have '
                f'{_DCN_GUIDE_CHANNELS} channels and carry the head\'s norm_cfg (as '
                f'in the official head), which GN(num_groups='
                f'{norm_cfg.get("num_groups")}) cannot divide; use norm_cfg=None '
                '(official) or a group count dividing 27.')
        # Read by _init_layers, which AnchorHead.__init__ calls.
        self.num_mask_convs = mask_convs
        self.num_panoptic_levels = num_panoptic_levels
        self.with_flows = with_flows
        self.dcn = dcn
        super().__init__(num_classes, in_channels, stacked_convs=stacked_convs,
                         **kwargs)
        if not self.use_sigmoid_cls:
            raise ValueError('SpatialFlowHead needs a sigmoid classifier '
                             '(loss_cls=dict(type=\'FocalLoss\', use_sigmoid=True)).')
        num_levels = self.prior_generator.num_levels
        if not 1 <= num_panoptic_levels <= num_levels:
            raise ValueError(
                f'num_panoptic_levels={num_panoptic_levels} must be in [1, '
                f'{num_levels}] (the anchor generator has {num_levels} strides).')

    def _conv(self, act: bool = True, out_channels: Optional[int] = None
              ) -> ConvModule:
        """3x3 ConvModule feat_channels -> out_channels with the head's conv / norm
        config; ``act=False`` for the linear flow convs."""
        return ConvModule(self.feat_channels, out_channels or self.feat_channels, 3,
                          padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                          act_cfg=dict(type='ReLU') if act else None)

    def _tower(self, num_convs: int, deformable: List[bool]) -> nn.ModuleList:
        return nn.ModuleList(
            ModulatedDeformConvModule(self.feat_channels, self.feat_channels,
                                      self.norm_cfg) if deformable[i] else self._conv()
            for i in range(num_convs))

    def _flows(self, deformable: List[bool]) -> nn.ModuleList:
        """One linear flow conv per target conv: 27 channels (offsets + masks) for
        a deformable target, feat_channels (added to its input) otherwise."""
        return nn.ModuleList(
            self._conv(act=False, out_channels=_DCN_GUIDE_CHANNELS if d else None)
            for d in deformable)

    def _init_layers(self) -> None:
        """Box, class, stuff and mask towers, the flows and RetinaNet's predictors
        (module names: see tools/model_converters/spatialflow_official_to_mmext.py
        for the official ones)."""
        depth = self.stacked_convs
        deform = [self.dcn] * depth
        mask_deform = [self.dcn] + [False] * (self.num_mask_convs - 1)
        self.reg_convs = self._tower(depth, [False] * depth)
        self.cls_convs = self._tower(depth, deform)
        self.stuff_convs = self._tower(depth, deform)
        self.mask_convs = self._tower(self.num_mask_convs, mask_deform)
        if self.with_flows:
            self.cls_flows = self._flows(deform)
            self.stuff_flows = self._flows(deform)
            self.mask_flow_reg = self._flows(mask_deform[:1])[0]
            self.mask_flow_stuff = self._flows([False])[0]
        self.retina_cls = nn.Conv2d(self.feat_channels,
                                    self.num_base_priors * self.cls_out_channels, 3,
                                    padding=1)
        self.retina_reg = nn.Conv2d(self.feat_channels,
                                    self.num_base_priors * self.bbox_coder.encode_size,
                                    3, padding=1)

    def init_weights(self) -> None:
        """As the official ``init_weights``: Normal(0.01), bias 0 for every tower and
        flow conv (deformable ones included), and RetinaNet's init of the
        predictors (prior bias for the classifier)."""
        super().init_weights()
        # mmengine re-runs ConvModule.init_weights (Kaiming) on ConvModules that are
        # direct children (the mask flows), and the Normal init_cfg does not match
        # ModulatedDeformConv2d: set every tower / flow conv explicitly.
        for name, module in self.named_modules():
            if name.startswith('retina_'):
                continue
            if isinstance(module, (nn.Conv2d, ModulatedDeformConv2d)):
                nn.init.normal_(module.weight, 0, 0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

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

    def _step(self, conv: nn.Module, flow: Optional[nn.Module], feat: Tensor,
              reg_feat: Tensor) -> Tensor:
        """One class / stuff conv: plain, flow added to its input, or (DCN)
        offsets and masks from the flow conv on ``feat + reg_feat``."""
        if flow is None:
            return conv(feat)
        if isinstance(conv, ModulatedDeformConvModule):
            return conv(feat, flow(feat + reg_feat))
        return conv(feat + flow(reg_feat))

    def forward_single(self, x: Tensor, panoptic: bool = False
                       ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """One level: x (N, in_channels, H, W) -> cls score, box deltas, and (when
        ``panoptic``) the stuff and mask features, else None for those two."""
        cls_feat = reg_feat = stuff_feat = x
        for i in range(self.stacked_convs):
            reg_feat = self.reg_convs[i](reg_feat)
            cls_feat = self._step(self.cls_convs[i],
                                  self.cls_flows[i] if self.with_flows else None,
                                  cls_feat, reg_feat)
            if panoptic:
                stuff_feat = self._step(
                    self.stuff_convs[i],
                    self.stuff_flows[i] if self.with_flows else None, stuff_feat,
                    reg_feat)
        cls_score = self.retina_cls(cls_feat)
        bbox_pred = self.retina_reg(reg_feat)
        if not panoptic:
            return cls_score, bbox_pred, None, None
        first = self.mask_convs[0]
        if not self.with_flows:
            mask_feat = first(x)
        elif isinstance(first, ModulatedDeformConvModule):
            guide = self.mask_flow_reg(x + reg_feat)
            mask_feat = first(x + self.mask_flow_stuff(stuff_feat), guide)
        else:
            # The official order of the two additions (bitwise-equal outputs).
            mask_feat = first(x + self.mask_flow_stuff(stuff_feat)
                              + self.mask_flow_reg(reg_feat))
        for conv in self.mask_convs[1:]:
            mask_feat = conv(mask_feat)
        return cls_score, bbox_pred, stuff_feat, mask_feat

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Optional[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: Optional[ConfigDict] = None,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """Detections of one image, with the official candidates before NMS.

        mmdetection v2.3 (``AnchorHead._get_bboxes_single`` + ``multiclass_nms``,
        what the official code runs): per level the ``nms_pre`` anchors with the
        highest maximum class score, then EVERY (anchor, class) pair of them with
        ``score > score_thr`` enters the class-wise NMS. (mmdet 3 keeps the
        ``nms_pre`` best pairs per level instead, which differs on crowded images.)
        Rescaling, NMS and ``max_per_img`` are mmdet's ``_bbox_post_process``.

        Args:
            cls_score_list: per level (A * num_classes, H, W) logits.
            bbox_pred_list: per level (A * 4, H, W) deltas.
            score_factor_list: unused (None per level for RetinaNet).
            mlvl_priors: per level (H * W * A, 4) anchors.
            img_meta: with ``img_shape`` (and ``scale_factor`` for ``rescale``).

        Returns:
            ``bboxes`` (K, 4), ``scores`` (K,), ``labels`` (K,).
        """
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        boxes, scores = [], []
        for cls_score, bbox_pred, priors in zip(cls_score_list, bbox_pred_list,
                                                mlvl_priors):
            level_scores = cls_score.permute(1, 2, 0).reshape(
                -1, self.cls_out_channels).sigmoid()
            deltas = bbox_pred.permute(1, 2, 0).reshape(-1,
                                                        self.bbox_coder.encode_size)
            if 0 < nms_pre < level_scores.shape[0]:
                top = level_scores.max(dim=1).values.topk(nms_pre).indices
                priors, deltas, level_scores = priors[top], deltas[top], \
                    level_scores[top]
            boxes.append(self.bbox_coder.decode(priors, deltas,
                                                max_shape=img_meta['img_shape']))
            scores.append(level_scores)
        boxes, scores = torch.cat(boxes), torch.cat(scores)
        anchor_idx, labels = (scores > score_thr).nonzero(as_tuple=True)
        results = InstanceData(bboxes=boxes[anchor_idx],
                               scores=scores[anchor_idx, labels], labels=labels)
        # BaseDenseHead's protected helper for subclasses (mmdet's own heads call it
        # so); the only public route, predict_by_feat, is what calls this method.
        return self._bbox_post_process(results=results, cfg=cfg, rescale=rescale,
                                       with_nms=with_nms, img_meta=img_meta)
