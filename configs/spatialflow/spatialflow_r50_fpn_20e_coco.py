# SpatialFlow R50-FPN, COCO panoptic, 20 epochs: the official recipe (1333x800,
# steps at 16/19, 500-iter linear warm-up, SGD lr 0.01 for 16 images per batch).
# Target: PQ 41.8 / PQ-Th 48.3 / PQ-St 31.9 on COCO val (configs/spatialflow/README.md).
_base_ = [
    './_base_/spatialflow_r50_fpn.py',
    'mmdet::_base_/datasets/coco_panoptic.py',
    'mmdet::_base_/schedules/schedule_20e.py',
    'mmdet::_base_/default_runtime.py',
]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    # RetinaNet-style heads can diverge in the first iterations without it.
    clip_grad=dict(max_norm=35, norm_type=2))
# 8 GPUs x 2 images. Training with another batch size: add --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# What tools/train.py prints when data/coco is missing.
dataset_layout_hint = """data/coco/
  train2017/  val2017/                        COCO images
  annotations/panoptic_train2017.json          COCO panoptic annotations
  annotations/panoptic_train2017/*.png         (panoptic_annotations_trainval2017.zip,
  annotations/panoptic_val2017.json             unzip the inner PNG zips into
  annotations/panoptic_val2017/*.png            annotations/)"""
