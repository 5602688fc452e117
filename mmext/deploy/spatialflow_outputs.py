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
from mmengine.structures import PixelData
from torch import Tensor, nn

from .dense_outputs import _levels

ArrayLike = Union[np.ndarray, Tensor]


def spatialflow_stuff_labels(model: nn.Module, stuff_logits: Tensor,
                             batch_img_metas: Sequence[dict]) -> list:
    """``SpatialFlowStuffHead.predict_labels`` from the stride-4 stuff logits
    (N, S+1, H/4, W/4): per image (H_ori, W_ori) int64 labels."""
    # mmext's own nearest resize (OpenCV's index rule), as predict_labels uses it.
    from mmext.panoptic.stuff_head import _resize_nearest
    labels = model.stuff_head.upsample_logits(stuff_logits).argmax(dim=1)
    out = []
    for i, meta in enumerate(batch_img_metas):
        h, w = meta['img_shape'][:2]
        out.append(_resize_nearest(labels[i, :h, :w], tuple(meta['ori_shape'][:2])))
    return out


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
    if model.fusion is None:
        raise ValueError('SpatialFlow needs test_cfg (mask_thr_binary, panoptic) '
                         'to predict')
    device = next(model.parameters()).device
    cls_scores = _levels(outputs, 'cls_score', device)
    bbox_preds = _levels(outputs, 'bbox_pred', device)
    mask_feats = _levels(outputs, 'mask_feat', device)
    stuff_logits = torch.as_tensor(outputs['stuff_logits'], device=device)
    img_metas = [s.metainfo for s in batch_data_samples]
    dets = model.bbox_head.predict_by_feat(cls_scores, bbox_preds,
                                           batch_img_metas=img_metas, rescale=False)
    dets = model.mask_branch.predict(mask_feats, img_metas, dets, rescale=True)
    stuff_labels = spatialflow_stuff_labels(model, stuff_logits, img_metas)
    for sample, det, stuff_seg in zip(batch_data_samples, dets, stuff_labels):
        pan = model.fusion(det.masks.bool(), det.scores, det.labels, det.bboxes,
                           stuff_seg)
        sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        if model.output_instances:
            if not rescale:
                det.bboxes = det.bboxes * det.bboxes.new_tensor(
                    sample.metainfo['scale_factor']).repeat(2)
            sample.pred_instances = det
    return batch_data_samples
