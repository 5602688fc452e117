# The embedded demo scenes as a COCO panoptic dataset (3 thing + 3 stuff classes,
# 160x160 px). DemoCocoPanopticDataset writes the data under data_root on first use.
# Needs custom_imports of mmext (the model base of configs that use it has it).
_base_ = './demo_coco.py'  # data_root, img_scale, backend_args, the loaders

dataset_type = 'DemoCocoPanopticDataset'
# The detection dataset's pipelines with panoptic annotations (each list restated:
# a config list is replaced whole, never merged).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=_base_.backend_args),
    dict(type='Resize', scale=_base_.img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=_base_.img_scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=_base_.backend_args),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/panoptic_train.json',
    data_prefix=dict(img='images/train/', seg='annotations/panoptic_train/'),
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/panoptic_val.json',
    data_prefix=dict(img='images/val/', seg='annotations/panoptic_val/'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoPanopticMetric',
    ann_file=_base_.data_root + 'annotations/panoptic_val.json',
    seg_prefix=_base_.data_root + 'annotations/panoptic_val/',
    backend_args=_base_.backend_args)
test_evaluator = val_evaluator
