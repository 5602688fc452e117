"""SpatialFlow's mask branch: RoIAlign on the mask-tower features + an FCN mask head."""
from typing import List, Sequence

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor


@MODELS.register_module()
class SpatialFlowMaskBranch(StandardRoIHead):
    """Mask-only RoI head: proposals are the dense head's own detections.

    Training (``train_cfg``: ``assigner``, ``sampler``, ``mask_size``): proposals are
    the post-NMS detections of the box/class towers; the sampler adds the GT boxes
    and keeps the positives (IoU >= 0.5 with a GT box), whose masks are learnt.
    Inference (``test_cfg.mask_thr_binary``): one mask per detection, pasted at the
    original image size. RoI extraction, mask targets, loss and pasting are mmdet's
    (:class:`~mmdet.models.roi_heads.StandardRoIHead`, ``FCNMaskHead``); only the
    box branch is absent.

    Args:
        mask_roi_extractor: e.g. ``SingleRoIExtractor`` with ``RoIAlign`` (14 px)
            and ``featmap_strides=[8, 16, 32]`` (the mask-tower levels).
        mask_head: e.g. ``FCNMaskHead`` (4 convs, 28x28 masks).
    """

    def __init__(self, mask_roi_extractor: dict, mask_head: dict,
                 train_cfg: dict = None, test_cfg: dict = None,
                 init_cfg: dict = None) -> None:
        super().__init__(mask_roi_extractor=mask_roi_extractor, mask_head=mask_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg)

    @property
    def featmap_strides(self) -> Sequence[int]:
        return self.mask_roi_extractor.featmap_strides

    def loss(self, x: Sequence[Tensor], proposals: InstanceList,
             batch_data_samples: SampleList) -> dict:
        """Mask loss.

        Args:
            x: mask-tower features, finest first, (N, C, H_l, W_l) each.
            proposals: per image, detections with ``bboxes`` (K, 4) in the padded
                input's pixels (consumed: renamed to ``priors``).
            batch_data_samples: with ``gt_instances`` holding ``bboxes``,
                ``labels`` and ``masks``.
        """
        if self.train_cfg is None:
            raise ValueError('SpatialFlowMaskBranch.loss needs train_cfg.mask '
                             '(assigner, sampler, mask_size) in the model config.')
        gt_instances, gt_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, props in enumerate(proposals):
            props.priors = props.pop('bboxes')
            assign_result = self.bbox_assigner.assign(props, gt_instances[i],
                                                      gt_ignore[i])
            sampling_results.append(self.bbox_sampler.sample(
                assign_result, props, gt_instances[i],
                feats=[lvl[i][None] for lvl in x]))
        results = self.mask_loss(x, sampling_results, None, gt_instances)
        return dict(loss_mask=results['loss_mask']['loss_mask'])

    def predict(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                results_list: InstanceList, rescale: bool = True) -> InstanceList:
        """Adds ``masks`` (K, H, W) bool at the original image size to each
        image's detections (boxes are rescaled to it when ``rescale``)."""
        return self.predict_mask(tuple(x), batch_img_metas, results_list,
                                 rescale=rescale)
