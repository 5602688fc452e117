# PKD demo teacher: Faster R-CNN R18 (128-channel FPN, P2-P6) from scratch on the
# embedded demo data, trained longer than the students (300 vs 200 iterations).
# Stronger than, and different from, the RetinaNet-R18 student (two-stage, strides
# 4-64 vs 8-128, 128 vs 64 FPN channels), like the paper's Mask R-CNN Swin ->
# RetinaNet pair. (A Mask R-CNN teacher works the same way: the demo data has
# instance polygons. Its mask head made it ~3x the student's step time on 2 CPU cores,
# too slow for the demo's time budget; only the teacher's backbone+neck matter to PKD.)
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/demo_schedule.py',  # AdamW, cosine decay; 300 iterations here
    './_base_/demo_coco_detection.py',
]

model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),  # from scratch: no pretrained downloads here
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # Demo objects are 12-70 px: anchors from 16 px at stride 4.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

max_iters = 300
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
# No validation during training (run_demo / tools/test.py evaluate afterwards).
val_cfg = None
val_dataloader = None
val_evaluator = None
# _delete_ drops schedule_1x's mmdet scope tag: the same loop, as this config always had.
test_cfg = dict(_delete_=True, type='TestLoop')
# Restated for max_iters = 300: a list replaces the base's whole list.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
