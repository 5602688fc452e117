# SpatialFlow R101-DCN, multi-scale training in fp16: the official
# spatialflow_r101_dcn_fpn_20e_coco_multiscale_fp16.py (chensnathan/SpatialFlow
# configs/spatialflow/). Target: PQ 48.0 on COCO val WITH its test-time augmentation
# (tools/test.py ... --tta); every setting: configs/spatialflow/README.md.
_base_ = './spatialflow_r101_fpn_20e_coco.py'
model = dict(
    # Modulated deformable convs in ResNet stages 2-4 (official L5-8) and in the
    # head's class, stuff and mask convs (dcn_{cls,stuff}_convs_idx=[0..3],
    # dcn_mask_convs_idx=[0], official L9-13).
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(dcn=True))

# fp16 = dict(loss_scale=512.) (official L3): mixed precision with a static loss
# scale of 512, here through mmengine's AMP optimizer wrapper.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.)

# Short side 400-1400, long side <= 1600 (official L22-26: img_scale=[(1600, 400),
# (1600, 1400)], multiscale_mode='range'); mmdet 3's RandomResize samples the long
# edge in [1600, 1600] and the short edge in [400, 1400] the same way.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadPanopticAnnotations', backend_args={{_base_.backend_args}}),
    dict(type='RandomResize', scale=[(1600, 400), (1600, 1400)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# workers_per_gpu=4 (official L53).
train_dataloader = dict(num_workers=4, dataset=dict(pipeline=train_pipeline))

# Official test-time augmentation (its 48.0 PQ is this): 3 scales x {no flip, flip},
# (long, short) = (1500, 1000), (1800, 1200), (2100, 1400), keep ratio
# (chensnathan/SpatialFlow configs/spatialflow/
# spatialflow_r101_dcn_fpn_20e_coco_multiscale_fp16.py:L39-41, MultiScaleFlipAug),
# merged as the official SpatialFlow.aug_test (mmext/panoptic/tta.py).
# Run with tools/test.py CONFIG CKPT --tta.
tta_model = dict(type='SpatialFlowTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in [(1500, 1000), (1800, 1200), (2100, 1400)]],
            [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)],
            [dict(type='LoadPanopticAnnotations',
                  backend_args={{_base_.backend_args}})],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                             'scale_factor', 'flip', 'flip_direction'))],
        ])
]
