# The embedded demo scenes as a semantic segmentation dataset (160x160 px, 6 classes:
# circle, triangle, square, sky, grass, water; 255 = ignore).
# DemoSegDataset writes the data under data_root on first use (deterministic).
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

dataset_type = 'DemoSegDataset'
data_root = 'data/demo/'
crop_size = (160, 160)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', seg_map_path='seg/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='seg/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# mIoU, and mIoU inside 3 px and 8 px bands around the ground-truth boundaries.
val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                 dict(type='BoundaryIoUMetric', widths=(3, 8))]
test_evaluator = val_evaluator
