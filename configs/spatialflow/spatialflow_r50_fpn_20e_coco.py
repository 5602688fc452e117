# SpatialFlow R50-FPN, COCO panoptic, 20 epochs: the official recipe
# (chensnathan/SpatialFlow configs/spatialflow/spatialflow_r50_fpn_20e_coco.py: 1333x800,
# steps at 16/19, 500-iter linear warm-up, SGD lr 0.005 for 4 GPUs x 2 images, no
# gradient clipping). Target: PQ 41.8 / PQ-Th 48.3 / PQ-St 31.9 on COCO val; every
# setting against the official one: configs/spatialflow/README.md.
_base_ = [
    './_base_/spatialflow_r50_fpn.py',
    'mmdet::_base_/datasets/coco_panoptic.py',
    'mmdet::_base_/schedules/schedule_20e.py',
    'mmdet::_base_/default_runtime.py',
]

# The official StuffHead.loss as it runs (stuff_head.py:158-171): N (images per GPU)
# times a per-pixel mean over image 0's box: an effective weight of 2 x 0.25 at this
# recipe's 2 images per GPU. 'per_image' (the head's default) is the batch-size
# independent mean; configs/spatialflow/README.md, recipe audit, row "stuff loss".
model = dict(stuff_head=dict(loss_mode='official'))

# Official optimizer (L7) and optimizer_config=dict(grad_clip=None) (its
# schedule_20e.py L3): no gradient clipping.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=0.0001),
    clip_grad=None)
# The official run: 4 GPUs x 2 images (its README: "learning_rate in configs is
# setting default for 4 GPUs"). Another batch size: add --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=8)

# What tools/train.py prints when data/coco is missing.
dataset_layout_hint = """data/coco/
  train2017/  val2017/                        COCO images
  annotations/panoptic_train2017.json          COCO panoptic annotations
  annotations/panoptic_train2017/*.png         (panoptic_annotations_trainval2017.zip,
  annotations/panoptic_val2017.json             unzip the inner PNG zips into
  annotations/panoptic_val2017/*.png            annotations/)"""
