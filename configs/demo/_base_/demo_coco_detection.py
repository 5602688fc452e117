# The embedded demo scenes as a COCO detection dataset (things only, 160x160 px).
# DemoCocoDataset writes the data under data_root on first use (deterministic).
_base_ = './demo_coco.py'  # data_root, img_scale, backend_args, the loaders
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

dataset_type = 'DemoCocoDataset'
# demo_coco_panoptic.py restates these lists with its annotation step: a config list
# is replaced whole, never merged.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=_base_.img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=_base_.img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/instances_train.json',
    data_prefix=dict(img='images/train/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/instances_val.json',
    data_prefix=dict(img='images/val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=_base_.data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False,
    backend_args=_base_.backend_args)
test_evaluator = val_evaluator
