"""SpatialFlow: a RetinaNet-based one-stage panoptic segmentor."""
import copy
from typing import List, Tuple

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import PixelData
from torch import Tensor

from ..utils.feature_levels import DUMMY_SIZE, Level, measure_levels
from .fusion import SpatialFlowFusion
from .neck_strides import neck_stride_problems, stuff_num_upsamples

_FUSION_KEYS = ('score_thr', 'overlap_thr', 'stuff_area_limit', 'box_fill_thr')


@MODELS.register_module()
class SpatialFlow(SingleStageDetector):
    """SpatialFlow (Chen et al., TCSVT 2020): box, class, mask and stuff
    sub-networks on one RetinaNet head, bridged by spatial information flows.

    Components (each a registry config, so any of them can be swapped):

    * ``backbone`` / ``neck``: e.g. ResNet + RetinaNet's FPN (P3..P7); any pair
      whose outputs have the anchor strides (measured at build time: HRNet needs
      ``HRFPN(stride=2)``, see configs/spatialflow/README.md);
    * ``bbox_head``: :class:`SpatialFlowHead` (anchors, focal loss, box loss);
    * ``mask_branch``: :class:`SpatialFlowMaskBranch` (RoIAlign on the mask-tower
      features of P3..P5 + mmdet's ``FCNMaskHead``);
    * ``stuff_head``: :class:`SpatialFlowStuffHead` (stuff classes + "things").

    ``train_cfg``: RetinaNet's keys (assigner, ...) plus ``mask_proposal`` (the
    post-processing that turns the head's outputs into mask proposals: nms_pre,
    score_thr, nms, max_per_img) and ``mask`` (the mask branch's assigner,
    sampler, mask_size). ``test_cfg``: RetinaNet's keys plus ``mask_thr_binary``
    and ``panoptic`` (score_thr, overlap_thr, stuff_area_limit, box_fill_thr; see
    :class:`SpatialFlowFusion`).

    ``predict`` fills ``pred_panoptic_seg.sem_seg`` (1, H, W) at the original image
    size in mmdet's encoding (thing: label + k * INSTANCE_OFFSET, stuff: label, void:
    num_things + num_stuff), so mmdet's ``CocoPanopticMetric``, visualiser and
    ``tools/test.py`` work unchanged; with ``output_instances=True`` it also fills
    ``pred_instances`` (boxes, scores, labels, masks) for mmdet's ``CocoMetric``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 mask_branch: ConfigType,
                 stuff_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 output_instances: bool = False) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        mask_branch = copy.deepcopy(mask_branch)
        mask_branch.update(train_cfg=train_cfg.get('mask') if train_cfg else None,
                           test_cfg=test_cfg)
        self.mask_branch = MODELS.build(mask_branch)
        self.stuff_head = MODELS.build(stuff_head)
        self.output_instances = output_instances
        self._check_consistency()
        # The fusion configuration is validated here, once, not per image.
        self.fusion = None
        if self.test_cfg is not None:
            self.fusion = SpatialFlowFusion(self.num_things_classes,
                                            self.num_stuff_classes,
                                            **self.test_cfg['panoptic'])

    @property
    def num_things_classes(self) -> int:
        return self.stuff_head.num_things_classes

    @property
    def num_stuff_classes(self) -> int:
        return self.stuff_head.num_stuff_classes

    def measure_neck(self) -> List[Level]:
        """(stride, channels) of each neck output, measured by one dummy forward
        of backbone + neck (1x3x256x256, eval mode, no_grad, modes restored)."""
        try:
            return measure_levels(self.extract_feat, self)
        except Exception as exc:  # noqa: BLE001  (any failure is the config's)
            raise ValueError(
                f'SpatialFlow config: backbone + neck fail on a 1x3x{DUMMY_SIZE}x'
                f'{DUMMY_SIZE} dummy input ({type(exc).__name__}: {exc}); check '
                'that neck.in_channels are the backbone\'s output channels.') from exc

    def _check_consistency(self) -> None:
        """Fail at build time, naming the keys, when the parts disagree: thing
        classes, the measured neck strides against the anchor strides, the mask
        RoI strides and the stuff head's levels (``neck_strides.py``), test and
        train settings."""
        head, branch, stuff = self.bbox_head, self.mask_branch, self.stuff_head
        problems = []
        mask_classes = branch.mask_head.num_classes
        if not (head.num_classes == stuff.num_things_classes
                and (branch.mask_head.class_agnostic
                     or mask_classes == head.num_classes)):
            problems.append(
                f'thing classes differ: bbox_head.num_classes={head.num_classes}, '
                f'mask_branch.mask_head.num_classes={mask_classes}, '
                f'stuff_head.num_things_classes={stuff.num_things_classes}')
        levels = getattr(head, 'num_panoptic_levels', None)
        if levels is None:
            problems.append(f'bbox_head {type(head).__name__} has no stuff / mask '
                            'towers: use SpatialFlowHead')
        else:
            problems += neck_stride_problems(
                [stride for stride, _ in self.measure_neck()],
                [int(s[0]) for s in head.prior_generator.strides], levels,
                list(branch.featmap_strides), stuff_num_upsamples(stuff))
        if self.test_cfg is not None:
            panoptic = self.test_cfg.get('panoptic')
            if panoptic is None or 'mask_thr_binary' not in self.test_cfg:
                problems.append('test_cfg needs mask_thr_binary and panoptic=dict('
                                + ', '.join(f'{k}=...' for k in _FUSION_KEYS) + ')')
            elif set(panoptic) - set(_FUSION_KEYS):
                problems.append(f'unknown test_cfg.panoptic keys '
                                f'{sorted(set(panoptic) - set(_FUSION_KEYS))}; '
                                f'known: {list(_FUSION_KEYS)}')
        if self.train_cfg is not None:
            missing = [k for k in ('mask_proposal', 'mask') if k not in self.train_cfg]
            if missing:
                problems.append(f'train_cfg lacks {missing} (mask proposals / mask '
                                'branch assigner+sampler+mask_size)')
        if problems:
            raise ValueError('SpatialFlow config: ' + '; '.join(problems) + '.')

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Focal + box losses, mask loss on the head's own detections, stuff CE.

        batch_inputs: (N, 3, H, W); samples carry gt_instances (bboxes, labels,
        masks) and gt_sem_seg (things + stuff labels, 255 = void).
        """
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds, stuff_feats, mask_feats = self.bbox_head(x)
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        losses = self.bbox_head.loss_by_feat(cls_scores, bbox_preds, gt_instances,
                                             img_metas, gt_ignore)
        with torch.no_grad():  # proposals carry no gradient
            proposals = self.bbox_head.predict_by_feat(
                cls_scores, bbox_preds, batch_img_metas=img_metas,
                cfg=self.train_cfg['mask_proposal'], rescale=False)
        losses.update(self.mask_branch.loss(mask_feats, proposals,
                                            batch_data_samples))
        losses.update(self.stuff_head.loss(stuff_feats, batch_data_samples))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic results at the original image size (see the class docstring).

        The panoptic map is always built at ``ori_shape`` (mmdet's mask pasting
        works there), whatever ``rescale`` says; ``rescale`` only affects the boxes
        of ``pred_instances``.
        """
        if self.fusion is None:  # before any forward work
            raise ValueError('SpatialFlow.predict needs test_cfg (mask_thr_binary, '
                             'panoptic) in the model config.')
        img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds, stuff_feats, mask_feats = self.bbox_head(x)
        # Official single-scale stuff map: argmax at the input size, nearest resize.
        stuff_labels = self.stuff_head.predict_labels(stuff_feats, img_metas)
        return self.predict_from_head_outputs(cls_scores, bbox_preds, mask_feats,
                                              stuff_labels, batch_data_samples,
                                              rescale)

    def predict_from_head_outputs(self, cls_scores: List[Tensor],
                                  bbox_preds: List[Tensor], mask_feats: List[Tensor],
                                  stuff_labels: List[Tensor],
                                  batch_data_samples: SampleList,
                                  rescale: bool = True) -> SampleList:
        """:meth:`predict` after the network: box decoding + NMS, the mask branch on
        the detections, the fusion with the stuff labels (per image (H_ori, W_ori)).

        Also what runs on an exported network's outputs (``mmext.deploy``).
        """
        if self.fusion is None:
            raise ValueError('SpatialFlow.predict needs test_cfg (mask_thr_binary, '
                             'panoptic) in the model config.')
        img_metas = [s.metainfo for s in batch_data_samples]
        dets = self.bbox_head.predict_by_feat(cls_scores, bbox_preds,
                                              batch_img_metas=img_metas,
                                              rescale=False)
        dets = self.mask_branch.predict(mask_feats, img_metas, dets, rescale=True)
        for sample, det, stuff_seg in zip(batch_data_samples, dets, stuff_labels):
            pan = self.fusion(det.masks.bool(), det.scores, det.labels, det.bboxes,
                              stuff_seg)
            sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
            if self.output_instances:
                if not rescale:
                    det.bboxes = det.bboxes * det.bboxes.new_tensor(
                        sample.metainfo['scale_factor']).repeat(2)
                sample.pred_instances = det
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> Tuple[List[Tensor], ...]:
        """Network outputs without post-processing: the head's four outputs, the
        stuff logits (N, S + 1, H/4, W/4) and, for the head's detections, the
        mask logits (K, C, 28, 28) (what FLOP counters trace)."""
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds, stuff_feats, mask_feats = self.bbox_head(x)
        stuff_logits = self.stuff_head(stuff_feats)['seg_preds']
        outs = (cls_scores, bbox_preds, stuff_logits)
        if batch_data_samples is not None:
            img_metas = [s.metainfo for s in batch_data_samples]
            dets = self.bbox_head.predict_by_feat(cls_scores, bbox_preds,
                                                  batch_img_metas=img_metas)
            rois = bbox2roi([d.bboxes for d in dets])
            # StandardRoIHead's public submodules, as its private _mask_forward
            # composes them (its public forward() would keep only rois[:100]).
            extractor = self.mask_branch.mask_roi_extractor
            roi_feats = extractor(tuple(mask_feats)[:extractor.num_inputs], rois)
            outs += (self.mask_branch.mask_head(roi_feats),)
        return outs

    def predict_raw(self, batch_inputs: Tensor,
                    batch_data_samples: SampleList) -> list:
        """What test-time augmentation merges (``SpatialFlowTTAModel``), per image:
        a ``SpatialFlowView`` with the detections before NMS (``bboxes`` (K, 4) in
        input pixels, ``scores``, ``labels``; the same candidates as ``predict``),
        the stuff logits (S + 1, H_ori, W_ori) at the original size (not
        un-flipped) and the mask-tower features (1, C, H_l, W_l) per level."""
        from .tta import SpatialFlowView  # tta imports this module
        img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds, stuff_feats, mask_feats = self.bbox_head(x)
        candidates = self.bbox_head.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=img_metas, rescale=False,
            with_nms=False)
        stuff_logits = self.stuff_head.predict(stuff_feats, img_metas, rescale=True)
        return [SpatialFlowView(sample, cand, logits,
                                tuple(level[i:i + 1] for level in mask_feats))
                for i, (sample, cand, logits) in enumerate(
                    zip(batch_data_samples, candidates, stuff_logits))]
