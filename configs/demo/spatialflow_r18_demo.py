# SpatialFlow R18 from scratch on the embedded demo panoptic data: minutes on 2 CPU
# cores. Same model code as configs/spatialflow/; only the size and schedule shrink.
_base_ = [
    '../spatialflow/_base_/spatialflow_r50_fpn.py',
    './_base_/demo_schedule.py',  # 500 AdamW iterations
    './_base_/demo_coco_panoptic.py',
]

num_things_classes = 3
num_stuff_classes = 3
head_norm = dict(type='GN', num_groups=16, requires_grad=True)
# The R18 / 64-channel shrink, as in the RetinaNet demo: restated, as the model comes
# from each file's own model base (mmengine refuses `model` in two _base_ files).
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
