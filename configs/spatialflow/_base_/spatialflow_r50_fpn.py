# SpatialFlow R50-FPN for COCO panoptic (80 thing + 53 stuff classes): the model of
# Chen et al., "SpatialFlow: Bridging All Tasks for Panoptic Segmentation" (TCSVT
# 2020), built from mmdet parts. Architecture facts: configs/spatialflow/README.md.
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

num_things_classes = 80
num_stuff_classes = 53
model = dict(
    type='SpatialFlow',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # RetinaNet's neck: P3..P7, P6 from C5.
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        type='SpatialFlowHead',
        num_classes=num_things_classes,
        in_channels=256,
        feat_channels=256,
        stacked_convs=4,  # box, class and stuff towers
        mask_convs=1,
        num_panoptic_levels=3,  # stuff + mask towers on P3..P5
        with_flows=True,
        dcn=False,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    mask_branch=dict(
        type='SpatialFlowMaskBranch',
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[8, 16, 32]),  # the mask-tower levels P3..P5
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            num_classes=num_things_classes,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    stuff_head=dict(
        type='SpatialFlowStuffHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=256,
        inner_channels=128,
        num_upsamples=(1, 2, 3),  # P3, P4, P5 -> stride 4
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        loss_seg=dict(
            type='CrossEntropyLoss', ignore_index=255, loss_weight=0.25)),
    train_cfg=dict(
        # RetinaNet's anchor assignment.
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
        # The head's own detections become the mask proposals.
        mask_proposal=dict(
            nms_pre=1000,
            min_bbox_size=-1,  # the official post-processing drops no box by size
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.4),
            max_per_img=100),
        # Proposals with IoU >= 0.5 to a GT box (GT boxes added) learn its mask.
        mask=dict(
            # match_low_quality: mmdet's default (True), as the official config
            # that does not set it.
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                ignore_iof_thr=-1),
            # Official: its PseudoSampler(add_gt_as_proposals=True) (GT boxes
            # added, every positive kept). The same here: RandomSampler keeps all
            # positives while there are at most 512 (<= 100 detections + GT boxes).
            sampler=dict(
                type='RandomSampler',
                num=512,
                pos_fraction=1.0,
                neg_pos_ub=0,  # positives only: the mask loss ignores negatives
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=-1,  # the official post-processing drops no box by size
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.4),  # official test_cfg (0.4, not 0.5)
        max_per_img=100,
        mask_thr_binary=0.5,
        # Official SpatialFlow fusion thresholds (mmext.panoptic.spatialflow_fusion).
        panoptic=dict(
            score_thr=0.37,
            overlap_thr=0.37,
            stuff_area_limit=4900,
            box_fill_thr=0.5)))
