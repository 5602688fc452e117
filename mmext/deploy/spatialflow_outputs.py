"""SpatialFlow's panoptic result from the exported network's outputs.

The ONNX graph (:class:`mmext.deploy.wrappers.SpatialFlowExport`) ends where
SpatialFlow's data-dependent part begins: box decoding + NMS, RoIAlign of the
mask-tower features on the detections, the mask head, pasting and the panoptic fusion.
:func:`spatialflow_predict_from_outputs` runs that part with the PyTorch model's own
modules, so the result is ``SpatialFlow.predict``'s for the same network outputs::

    session = onnxruntime.InferenceSession('spatialflow.onnx')
    data = model.data_preprocessor(batch, False)          # normalise + pad
    arrays = session.run(None, {'inputs': data['inputs'].numpy()})
    names = [o.name for o in session.get_outputs()]
    samples = spatialflow_predict_from_outputs(model, dict(zip(names, arrays)),
                                               data['data_samples'])
    samples[0].pred_panoptic_seg.sem_seg  # (1, H, W), mmdet's panoptic encoding
"""
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from .dense_outputs import _levels

ArrayLike = Union[np.ndarray, Tensor]


@torch.no_grad()
def spatialflow_predict_from_outputs(model: nn.Module,
                                     outputs: Mapping[str, ArrayLike],
                                     batch_data_samples: Sequence,
                                     rescale: bool = True) -> Sequence:
    """``SpatialFlow.predict`` from the exported outputs (see the module docstring).

    Args:
        model: the SpatialFlow model that was exported (eval mode; its heads'
            post-processing, mask branch and fusion are used).
        outputs: ``{output name: array}``: ``cls_score_{l}``, ``bbox_pred_{l}``,
            ``stuff_logits`` (N, S+1, H/4, W/4), ``mask_feat_{l}`` (N, C, H_l, W_l).
        batch_data_samples: the batch's samples (metainfo as the data preprocessor
            leaves it); ``pred_panoptic_seg`` (and with ``output_instances``,
            ``pred_instances``) are filled in.
    """
    device = next(model.parameters()).device
    stuff_logits = torch.as_tensor(outputs['stuff_logits'], device=device)
    img_metas = [s.metainfo for s in batch_data_samples]
    return model.predict_from_head_outputs(
        _levels(outputs, 'cls_score', device), _levels(outputs, 'bbox_pred', device),
        _levels(outputs, 'mask_feat', device),
        model.stuff_head.labels_from_logits(stuff_logits, img_metas),
        batch_data_samples, rescale)
