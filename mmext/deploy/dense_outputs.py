"""A dense detector's detections from its exported outputs (boxes decoded and NMS'd
in Python, as the detector's own ``predict`` does)."""
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
