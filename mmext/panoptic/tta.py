"""Test-time augmentation for SpatialFlow (multi-scale + flip), as the official
``SpatialFlow.aug_test`` (chensnathan/SpatialFlow, mmdet/models/detectors/spatialflow.py).

mmdet 3 has a TTA only for boxes (``DetTTAModel``); a panoptic model needs more than
merging final predictions: the masks of the merged boxes are computed from every
view's mask features and the stuff logits are averaged before the argmax. So
:class:`SpatialFlowTTAModel` runs each view through the detector's network (via
``SpatialFlow.predict_raw``) and merges the raw outputs.

Use it as mmdet's ``--tta``: the config gets ``tta_model = dict(type=
'SpatialFlowTTAModel')`` and a ``tta_pipeline`` with ``TestTimeAug`` (Resize x
RandomFlip views; ``PackDetInputs`` must keep ``scale_factor``, ``flip`` and
``flip_direction``), and ``tools/test.py CONFIG CKPT --tta`` wraps the model.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmcv.ops import batched_nms
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi, bbox_flip
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

_TTA_CFG_KEYS = ('nms', 'max_per_img')
_FLIP_DIMS = {'horizontal': (-1, ), 'vertical': (-2, ), 'diagonal': (-2, -1)}


class SpatialFlowView(NamedTuple):
    """One image seen through one augmentation (what ``predict_raw`` returns).

    Attributes:
        sample: the view's data sample (metainfo: ori_shape, img_shape,
            scale_factor, flip, flip_direction).
        candidates: detections before NMS: ``bboxes`` (K, 4) in the view's input
            pixels, ``scores`` (K,), ``labels`` (K,).
        stuff_logits: (num_stuff + 1, H_ori, W_ori) stuff logits resized to the
            original image, still in the view's orientation (flipped if it is).
        mask_feats: the mask-tower features of this image, (1, C, H_l, W_l) per
            panoptic level, finest first.
    """
    sample: DetDataSample
    candidates: InstanceData
    stuff_logits: Tensor
    mask_feats: Tuple[Tensor, ...]


def _unflip(t: Tensor, direction: str) -> Tensor:
    """Undo a flip of ``t`` (..., H, W): mirror W (horizontal), H (vertical) or both
    (diagonal); a flip is its own inverse."""
    if direction not in _FLIP_DIMS:
        raise ValueError(f'SpatialFlowTTAModel: unknown flip_direction '
                         f'{direction!r}; expected one of {list(_FLIP_DIMS)}')
    return t.flip(_FLIP_DIMS[direction])


def _scale(meta: dict, like: Tensor) -> Tensor:
    """(4,) factors (w, h, w, h) from input pixels of a view to its image pixels."""
    return like.new_tensor(meta['scale_factor']).repeat(2)


@MODELS.register_module()
class SpatialFlowTTAModel(BaseTTAModel):
    """Multi-scale / flip test-time augmentation of :class:`SpatialFlow`.

    For every image, with V views (one per scale x flip):

    Official references (chensnathan/SpatialFlow): ``SpatialFlow.aug_test`` in
    mmdet/models/detectors/spatialflow.py:L225-333, the head's pre-NMS return in
    mmdet/models/dense_heads/anchor_head.py:L650-652, ``merge_aug_bboxes`` /
    ``merge_aug_masks`` in mmdet/core/post_processing/merge_augs.py:L50-120 and
    ``StuffHead.get_stuff_map_aug`` in mmdet/models/stuff_heads/stuff_head.py:L207-260.

    1. **Detections**: each view's candidates before NMS (the head's per-level
       score threshold and top-k, as in plain inference) are mapped back to the
       original image (un-flip in the view's ``img_shape``, then divide by its
       ``scale_factor``: the official ``bbox_mapping_back``), concatenated over the
       views (official ``merge_aug_bboxes(..., return_mean=False)``, L262), and one
       class-aware NMS keeps ``max_per_img`` (official ``multiclass_nms`` with the
       model's test ``nms`` / ``max_per_img``, L265; the score threshold was
       already applied per view).
    2. **Masks**: the merged boxes are mapped into every view (times
       ``scale_factor``, then flipped: official ``bbox_mapping``, L289), RoI-aligned
       on that view's mask-tower features, and the mask head's sigmoid maps (K, C,
       28, 28) are un-flipped and averaged over the views (official L301 and
       ``merge_aug_masks``), then pasted once at the original size with the merged
       boxes and binarised at ``test_cfg.mask_thr_binary`` (official L313).
    3. **Stuff**: each view's stuff logits (4x upsampled to its padded input),
       cropped to its valid region and bilinearly resized (``align_corners=True``)
       to the original image, are un-flipped and averaged; the argmax is the stuff
       map (official ``StuffHead.get_stuff_map_aug``; plain inference instead takes
       the argmax at the input size and resizes the labels, as the official
       ``simple_test``: the two agree for a view at scale 1).
    4. **Fusion**: the model's :class:`SpatialFlowFusion` (``test_cfg.panoptic``),
       giving ``pred_panoptic_seg`` (and ``pred_instances`` when the model has
       ``output_instances=True``) as plain inference.

    With a single view at the test scale of the model (scale 1, no flip) the output
    equals ``SpatialFlow.predict`` exactly (tested). Where mmdet 3 makes us differ
    from the official code:

    * the per-view candidates are those of plain inference, the head's
      ``predict_by_feat(..., with_nms=False)``: ``SpatialFlowHead`` selects them as
      mmdet v2.3 (the top ``nms_pre`` anchors per level by their best class score,
      every (anchor, class) pair above ``score_thr``); the official code
      thresholds after the merge instead of per view, which selects the same set;
    * views are produced by mmcv's ``TestTimeAug`` with mmdet 3's ``Resize`` and
      ``RandomFlip`` (the official ``MultiScaleFlipAug``): same scales, same
      keep-ratio rule, resizing by mmcv's ``imresize`` in both;
    * the merged prediction is written into the first view's data sample (as
      mmdet's ``DetTTAModel``); only its ``img_id`` / ``ori_shape`` matter.

    Args:
        module: the SpatialFlow config (or model) to wrap.
        tta_cfg: optional ``dict(nms=..., max_per_img=...)`` for the merge; by
            default the wrapped model's ``test_cfg`` values (as the official).
        data_preprocessor: see :class:`~mmengine.model.BaseTTAModel`.
    """

    def __init__(self,
                 module: Union[dict, nn.Module],
                 tta_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None) -> None:
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        if not hasattr(self.module, 'predict_raw'):
            raise TypeError(f'SpatialFlowTTAModel wraps a SpatialFlow model (it needs '
                            f'predict_raw), got {type(self.module).__name__}; for '
                            'other mmdet detectors use mmdet\'s DetTTAModel.')
        tta_cfg = dict(tta_cfg or {})
        unknown = set(tta_cfg) - set(_TTA_CFG_KEYS)
        if unknown:
            raise ValueError(f'SpatialFlowTTAModel: unknown tta_cfg keys '
                             f'{sorted(unknown)}; known: {list(_TTA_CFG_KEYS)}')
        test_cfg = self.module.test_cfg
        self.nms_cfg = tta_cfg.get('nms', test_cfg['nms'])
        self.max_per_img = tta_cfg.get('max_per_img', test_cfg['max_per_img'])

    # -- mmengine entry points ---------------------------------------------------
    def test_step(self, data: Union[dict, tuple, list]) -> List[DetDataSample]:
        """Run every view through the network, then merge per image.

        ``data``: the collated ``TestTimeAug`` batch, ``dict(inputs=[view][image],
        data_samples=[view][image])`` (see :class:`~mmengine.model.BaseTTAModel`).
        """
        if isinstance(data, dict):
            num_views = len(data[next(iter(data))])
            views = [{k: v[i] for k, v in data.items()} for i in range(num_views)]
        elif isinstance(data, (tuple, list)):
            views = [[d[i] for d in data] for i in range(len(data[0]))]
        else:
            raise TypeError(f'SpatialFlowTTAModel: the dataloader must give a dict, '
                            f'tuple or list, got {type(data).__name__}')
        per_view = []
        for view in views:
            batch = self.module.data_preprocessor(view, False)
            per_view.append(self.module.predict_raw(batch['inputs'],
                                                    batch['data_samples']))
        return self.merge_preds([list(v) for v in zip(*per_view)])

    def merge_preds(self, data_samples_list: List[List[SpatialFlowView]]
                    ) -> List[DetDataSample]:
        """``data_samples_list[i]``: the views of image i -> one sample per image."""
        return [self.merge_views(views) for views in data_samples_list]

    # -- the merge ------------------------------------------------------------------
    def merge_views(self, views: Sequence[SpatialFlowView]) -> DetDataSample:
        """Merge the views of one image into its panoptic prediction (see class)."""
        metas = [self._check_meta(v.sample.metainfo) for v in views]
        ori_shapes = {tuple(m['ori_shape'][:2]) for m in metas}
        if len(ori_shapes) != 1:
            raise ValueError(f'SpatialFlowTTAModel: the views of one image have '
                             f'different ori_shape {sorted(ori_shapes)}')
        dets = self.merge_detections(views)
        dets.masks = self.merge_masks(views, dets.bboxes, dets.labels)
        stuff_logits = self.merge_stuff(views)

        model = self.module
        # The model's own fusion (SpatialFlowFusion built from test_cfg.panoptic).
        pan = model.fusion(dets.masks, dets.scores, dets.labels, dets.bboxes,
                           stuff_logits.argmax(dim=0))
        sample = views[0].sample
        sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        if model.output_instances:
            sample.pred_instances = dets
        return sample

    def merge_detections(self, views: Sequence[SpatialFlowView]) -> InstanceData:
        """Candidates of all views in original-image pixels, one NMS, top
        ``max_per_img``: ``bboxes`` (K, 4), ``scores`` (K,), ``labels`` (K,)."""
        boxes, scores, labels = [], [], []
        for view in views:
            meta = view.sample.metainfo
            b = view.candidates.bboxes
            if meta['flip']:
                b = bbox_flip(b, meta['img_shape'], meta['flip_direction'])
            boxes.append(b / _scale(meta, b))
            scores.append(view.candidates.scores)
            labels.append(view.candidates.labels)
        merged = InstanceData(bboxes=torch.cat(boxes), scores=torch.cat(scores),
                              labels=torch.cat(labels))
        if len(merged) == 0:
            return merged
        det, keep = batched_nms(merged.bboxes, merged.scores, merged.labels,
                                self.nms_cfg)
        merged = merged[keep]
        merged.scores = det[:, -1]  # as mmdet's _bbox_post_process (soft-NMS)
        return merged[:self.max_per_img]

    def merge_masks(self, views: Sequence[SpatialFlowView], bboxes: Tensor,
                    labels: Tensor) -> Tensor:
        """(K, H_ori, W_ori) bool masks of ``bboxes`` (K, 4, original pixels) of
        classes ``labels`` (K,)."""
        branch = self.module.mask_branch
        ori_h, ori_w = views[0].sample.metainfo['ori_shape'][:2]
        if bboxes.shape[0] == 0:
            return torch.zeros((0, ori_h, ori_w), dtype=torch.bool,
                               device=bboxes.device)
        probs = None
        for view in views:
            meta = view.sample.metainfo
            b = bboxes * _scale(meta, bboxes)
            if meta['flip']:
                b = bbox_flip(b, meta['img_shape'], meta['flip_direction'])
            extractor = branch.mask_roi_extractor
            roi_feats = extractor(view.mask_feats[:extractor.num_inputs], bbox2roi([b]))
            p = branch.mask_head(roi_feats).sigmoid()  # (K, C, 28, 28)
            if meta['flip']:
                p = _unflip(p, meta['flip_direction'])
            probs = p if probs is None else probs + p
        probs = probs / len(views)
        # Boxes are already in original pixels: paste at ori_shape, scale 1.
        results = InstanceData(bboxes=bboxes.clone(), labels=labels)
        pasted = branch.mask_head.predict_by_feat(
            (probs, ), [results], [dict(ori_shape=(ori_h, ori_w),
                                        scale_factor=(1.0, 1.0))],
            branch.test_cfg, rescale=False, activate_map=True)
        return pasted[0].masks.bool()

    def merge_stuff(self, views: Sequence[SpatialFlowView]) -> Tensor:
        """(num_stuff + 1, H_ori, W_ori) mean of the views' un-flipped logits."""
        total = None
        for view in views:
            meta = view.sample.metainfo
            logits = view.stuff_logits
            if meta['flip']:
                logits = _unflip(logits, meta['flip_direction'])
            total = logits if total is None else total + logits
        return total / len(views)

    @staticmethod
    def _check_meta(meta: dict) -> dict:
        missing = [k for k in ('ori_shape', 'img_shape', 'scale_factor', 'flip')
                   if k not in meta]
        if meta.get('flip') and 'flip_direction' not in meta:
            missing.append('flip_direction')
        if missing:
            raise KeyError(f'SpatialFlowTTAModel: the view metainfo lacks {missing}; '
                           "give the tta_pipeline's PackDetInputs meta_keys=('img_id', "
                           "'img_path', 'ori_shape', 'img_shape', 'scale_factor', "
                           "'flip', 'flip_direction')")
        return meta
