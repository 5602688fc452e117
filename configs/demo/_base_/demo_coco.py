# What the demo's two COCO-format datasets share: the embedded demo scenes (160x160 px)
# under data_root and the loaders. demo_coco_detection.py and demo_coco_panoptic.py add
# the dataset type, annotation files, pipelines and metric.
data_root = 'data/demo/'
img_scale = (160, 160)
backend_args = None

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        data_root=data_root,
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(data_root=data_root, test_mode=True, backend_args=backend_args))
test_dataloader = val_dataloader
