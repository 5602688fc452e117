"""What is exported, per model type: a tensor-only module around the model.

Every wrapper takes the batch as the model's data preprocessor gives it, ``inputs``
(N, 3, H, W) normalised and padded, and returns a flat tuple of tensors named by
:attr:`ExportSpec.output_names`:

* mmseg segmentors (``EncoderDecoder`` and its subclasses, LaUHead or not):
  ``seg_logits`` (N, K, H, W), the segmentor's ``encode_decode``: the decode
  head's logits resized (bilinear) to the input size, as mmseg's inference does;
  the label map is its argmax over K.
* mmdet single-stage (dense) detectors, e.g. RetinaNet, FCOS, a PKD student: the
  head's raw outputs per FPN level, ``cls_score_{l}`` (N, A*K, H_l, W_l),
  ``bbox_pred_{l}`` (N, A*4, H_l, W_l) and, for heads with a third output,
  ``score_factor_{l}`` (e.g. FCOS centerness). Boxes are decoded in Python
  (:func:`mmext.deploy.detector_predict_from_outputs`): NMS is data-dependent.
* mmdet two-stage detectors (Faster / Mask / Cascade R-CNN, the PKD teachers): the
  neck maps ``feat_{l}`` (N, C, H_l, W_l) and the RPN head's ``rpn_cls_score_{l}``,
  ``rpn_bbox_pred_{l}``; proposals (NMS) and the RoI head, which runs on them, stay
  in Python (:func:`mmext.deploy.two_stage_predict_from_outputs`).
* SpatialFlow: ``cls_score_{l}``, ``bbox_pred_{l}`` (levels P3..P7),
  ``stuff_logits`` (N, S+1, H/4, W/4) and ``mask_feat_{l}`` (the mask-tower features
  of P3..P5, what the mask branch's RoIAlign reads); the rest runs in Python
  (:func:`mmext.deploy.spatialflow_predict_from_outputs`).
"""
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn

from mmext.utils.errors import UserError


@dataclass
class ExportSpec:
    """A wrapper and what it needs.

    Attributes:
        module: the tensor-only module to export (``forward(inputs) -> tuple``).
        output_names: one name per output tensor.
        kind: 'segmentor', 'detector', 'two_stage' or 'spatialflow'.
        size_divisor: input H and W must be multiples of it (the network stride,
            or the padding divisor of the data preprocessor, whichever is larger).
    """
    module: nn.Module
    output_names: List[str]
    kind: str
    size_divisor: int


class SegmentorExport(nn.Module):
    """``inputs`` (N, 3, H, W) -> (seg_logits (N, K, H, W),) via ``encode_decode``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: Tensor) -> Tuple[Tensor]:
        size = inputs.shape[2:]
        # The decode head resizes its logits to ``pad_shape`` of the first meta
        # (mmseg's predict_by_feat; a batch shares its padded size): the input size.
        # One meta, not one per image: a list as long as the batch would fix the
        # batch size in a dynamic export.
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        return (self.segmentor.encode_decode(inputs, metas), )


class DenseDetectorExport(nn.Module):
    """``inputs`` -> the dense head's outputs, flattened level by level per kind."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        outs = self.detector._forward(inputs)  # mmdet's tensor mode: head outputs
        return tuple(t for kind in outs for t in kind)


class TwoStageDetectorExport(nn.Module):
    """``inputs`` -> the neck maps, then the RPN head's cls scores and box deltas."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        x = self.detector.extract_feat(inputs)
        rpn_cls_scores, rpn_bbox_preds = self.detector.rpn_head(x)
        return (*x, *rpn_cls_scores, *rpn_bbox_preds)


class SpatialFlowExport(nn.Module):
    """``inputs`` -> cls scores, box deltas (all levels), stuff logits, mask features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        x = self.model.extract_feat(inputs)
        cls_scores, bbox_preds, stuff_feats, mask_feats = self.model.bbox_head(x)
        stuff_logits = self.model.stuff_head(stuff_feats)['seg_preds']
        return (*cls_scores, *bbox_preds, stuff_logits, *mask_feats)


_DET_OUTPUT_NAMES = ('cls_score', 'bbox_pred', 'score_factor')


def _size_divisor(model: nn.Module, default: int) -> int:
    pre = getattr(model, 'data_preprocessor', None)
    value = max(int(getattr(pre, 'pad_size_divisor', 1) or 1),
                int(getattr(pre, 'size_divisor', None) or 1))
    return max(value, default)


def _network_stride(model: nn.Module, probe_size: int = 64) -> int:
    """The largest stride of the model's features (``extract_feat`` on a probe)."""
    param = next(model.parameters())
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, probe_size, probe_size,
                                               dtype=param.dtype, device=param.device))
    feats = [feats] if isinstance(feats, Tensor) else list(feats)
    return max(probe_size // f.shape[-1] for f in feats)


def wrap_for_export(model: nn.Module) -> ExportSpec:
    """The export wrapper of ``model`` (see the module docstring).

    Raises:
        UserError: the model type is not supported (two-stage detectors, whose
            second stage runs on data-dependent proposals, and non-mmdet/mmseg models).
    """
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
    from mmseg.models.segmentors import EncoderDecoder

    from mmext.panoptic import SpatialFlow

    name = type(model).__name__
    if isinstance(model, EncoderDecoder):
        stride = _network_stride(model)
        return ExportSpec(SegmentorExport(model).eval(), ['seg_logits'], 'segmentor',
                          _size_divisor(model, stride))
    if isinstance(model, SpatialFlow):
        levels = len(model.bbox_head.prior_generator.strides)
        panoptic = model.bbox_head.num_panoptic_levels
        names = ([f'cls_score_{i}' for i in range(levels)]
                 + [f'bbox_pred_{i}' for i in range(levels)] + ['stuff_logits']
                 + [f'mask_feat_{i}' for i in range(panoptic)])
        # The stuff head adds P3..P5 upsampled to stride 4: sizes must be exact.
        return ExportSpec(SpatialFlowExport(model).eval(), names, 'spatialflow',
                          _size_divisor(model, 32))
    if isinstance(model, TwoStageDetector):
        divisor = _size_divisor(model, 1)
        levels = len(model.rpn_head.prior_generator.strides)
        names = [f'{kind}_{i}' for kind in ('feat', 'rpn_cls_score', 'rpn_bbox_pred')
                 for i in range(levels)]
        return ExportSpec(TwoStageDetectorExport(model).eval(), names, 'two_stage',
                          divisor)
    if isinstance(model, SingleStageDetector):
        divisor = _size_divisor(model, 1)  # mmdet pads inputs to pad_size_divisor
        levels = len(model.bbox_head.prior_generator.strides)
        param = next(model.parameters())
        with torch.no_grad():  # how many kinds of output the head gives
            size = -(-64 // divisor) * divisor
            probe = torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device)
            kinds = len(model._forward(probe))
        if kinds > len(_DET_OUTPUT_NAMES):
            raise UserError(f'{name}: its head gives {kinds} kinds of output; '
                            f'exportable dense heads give at most '
                            f'{len(_DET_OUTPUT_NAMES)} (cls scores, box predictions, '
                            'score factors)')
        names = [f'{kind}_{i}' for kind in _DET_OUTPUT_NAMES[:kinds]
                 for i in range(levels)]
        return ExportSpec(DenseDetectorExport(model).eval(), names, 'detector', divisor)
    raise UserError(
        f'cannot export a {name}: supported are mmseg segmentors (EncoderDecoder and '
        'subclasses), mmdet single-stage detectors (RetinaNet, FCOS, ..., PKD '
        'students), two-stage detectors (Faster / Mask / Cascade R-CNN) and '
        'SpatialFlow (see docs/deploy.md)')
