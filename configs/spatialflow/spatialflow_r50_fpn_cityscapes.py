# SpatialFlow R50-FPN on Cityscapes panoptic (8 thing + 11 stuff classes), evaluated
# with the official Cityscapes PQ code (mmext's CityscapesPanopticMetric).
# Paper: 62.5 PQ on Cityscapes val (its recipe is not published in the reference;
# this one follows mmdet's Cityscapes Mask R-CNN recipe: 2048x[800,1024] training,
# 8 epochs of an 8x repeated train set, lr step at epoch 7, init from COCO).
# Prepare the data first: docs/cityscapes_panoptic.md.
_base_ = [
    './_base_/spatialflow_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]

num_things_classes = 8
num_stuff_classes = 11
model = dict(
    bbox_head=dict(num_classes=num_things_classes),
    mask_branch=dict(mask_head=dict(num_classes=num_things_classes)),
    stuff_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        # The official StuffHead.loss; at 1 image per GPU it equals 'per_image'.
        loss_mode='official'))
# Start from a COCO SpatialFlow checkpoint (thing/stuff predictors are re-learnt;
# mmengine skips the shape-mismatched weights with a warning):
# load_from = 'work_dirs/spatialflow_r50_fpn_20e_coco/epoch_20.pth'

dataset_type = 'CityscapesPanopticDataset'
data_root = 'data/cityscapes/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='RandomResize', scale=[(2048, 800), (2048, 1024)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='RepeatDataset',
        times=8,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='gtFine/cityscapes_panoptic_train.json',
            data_prefix=dict(img='leftImg8bit/train/',
                             seg='gtFine/cityscapes_panoptic_train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args=backend_args)))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gtFine/cityscapes_panoptic_val.json',
        data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CityscapesPanopticMetric',
    data_root=data_root,
    gt_json='gtFine/cityscapes_panoptic_val.json')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7],
         gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)

dataset_layout_hint = """data/cityscapes/
  leftImg8bit/{train,val}/<city>/*_leftImg8bit.png
  gtFine/{train,val}/<city>/*_gtFine_instanceIds.png
  gtFine/cityscapes_panoptic_{train,val}.json + gtFine/cityscapes_panoptic_{train,val}/
  (make the last two with: python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes)"""
