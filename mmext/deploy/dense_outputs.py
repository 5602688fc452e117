"""A detector's detections from its exported outputs: what follows the network in
the detector's own ``predict`` (box decoding, NMS; a two-stage detector's proposals
and RoI head) runs in Python with the model's modules."""
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

ArrayLike = Union[np.ndarray, Tensor]


def _levels(outputs: Mapping[str, ArrayLike], kind: str, device) -> list:
    keys = sorted((k for k in outputs if k.rsplit('_', 1)[0] == kind),
                  key=lambda k: int(k.rsplit('_', 1)[1]))
    return [torch.as_tensor(outputs[k], device=device) for k in keys]


def detector_predict_from_outputs(model: nn.Module, outputs: Mapping[str, ArrayLike],
                                  batch_data_samples: Sequence, rescale: bool = True):
    """``model.predict`` of a single-stage detector, from the exported outputs.

    Args:
        model: the detector that was exported (its head decodes the boxes).
        outputs: ``{output name: array}``, e.g. ``dict(zip(names, session.run(...)))``
            with ``cls_score_{l}`` (N, A*K, H_l, W_l), ``bbox_pred_{l}`` and, if the
            head has them, ``score_factor_{l}``.
        batch_data_samples: the samples of the batch (their metainfo: img_shape,
            scale_factor, ...), filled with ``pred_instances`` and returned.
    """
    device = next(model.parameters()).device
    head_outs = [_levels(outputs, kind, device)
                 for kind in ('cls_score', 'bbox_pred', 'score_factor')]
    head_outs = [h for h in head_outs if h]
    metas = [s.metainfo for s in batch_data_samples]
    results = model.bbox_head.predict_by_feat(*head_outs, batch_img_metas=metas,
                                              rescale=rescale)
    return model.add_pred_to_datasample(batch_data_samples, results)


@torch.no_grad()
def two_stage_predict_from_outputs(model: nn.Module, outputs: Mapping[str, ArrayLike],
                                   batch_data_samples: Sequence, rescale: bool = True):
    """``model.predict`` of a two-stage detector, from the exported outputs.

    Args:
        model: the detector that was exported (its RPN head makes the proposals,
            its RoI head the detections, as ``TwoStageDetector.predict``).
        outputs: ``{output name: array}`` with ``feat_{l}`` (N, C, H_l, W_l),
            ``rpn_cls_score_{l}`` (N, A, H_l, W_l), ``rpn_bbox_pred_{l}``
            (N, A*4, H_l, W_l).
        batch_data_samples: the batch's samples, filled with ``pred_instances``.
    """
    device = next(model.parameters()).device
    feats = tuple(_levels(outputs, 'feat', device))
    metas = [s.metainfo for s in batch_data_samples]
    proposals = model.rpn_head.predict_by_feat(
        _levels(outputs, 'rpn_cls_score', device),
        _levels(outputs, 'rpn_bbox_pred', device), batch_img_metas=metas, rescale=False)
    results = model.roi_head.predict(feats, proposals, batch_data_samples,
                                     rescale=rescale)
    return model.add_pred_to_datasample(batch_data_samples, results)
