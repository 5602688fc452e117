# SpatialFlow R18 from scratch on the embedded demo panoptic data: minutes on 2 CPU
# cores. Same model code as configs/spatialflow/; only the size and schedule shrink.
_base_ = [
    '../spatialflow/_base_/spatialflow_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/demo_coco_panoptic.py',
]

num_things_classes = 3
num_stuff_classes = 3
head_norm = dict(type='GN', num_groups=16, requires_grad=True)
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,  # from scratch: nothing to freeze
        norm_eval=False,
        init_cfg=None),  # no pretrained download on these machines
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(
        num_classes=num_things_classes,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # GroupNorm in the towers, as in the RetinaNet demo (from scratch it trains
        # much faster; the paper's towers have no norm).
        norm_cfg=head_norm,
        # Demo objects are 12-70 px: anchors of 16-25 px at stride 8.
        anchor_generator=dict(octave_base_scale=2)),
    mask_branch=dict(
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(
            num_convs=2,
            in_channels=64,
            conv_out_channels=64,
            num_classes=num_things_classes)),
    stuff_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=64,
        inner_channels=64,
        norm_cfg=head_norm),
    # 4900 px is ~0.5-1.6% of a COCO image; the demo's 160x160 images get 256 px.
    test_cfg=dict(panoptic=dict(stuff_area_limit=256)))

max_iters = 500
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
# From scratch, SGD learns nothing in a few hundred iterations; AdamW does.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)

# Test-time augmentation (tools/test.py CONFIG CKPT --tta): the training size and a
# larger one, each with and without a horizontal flip (4 views), merged by
# SpatialFlowTTAModel as the official SpatialFlow aug_test.
tta_model = dict(type='SpatialFlowTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in [(160, 160), (224, 224)]],
            [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)],
            [dict(type='LoadPanopticAnnotations', backend_args=None)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                             'scale_factor', 'flip', 'flip_direction'))],
        ])
]
