# Baseline of the paper's PASCAL Context table: EncNet R50-D8, bilinear upsampling,
# with the official recipe (LaU-reg/experiments/segmentation option.py defaults +
# scripts/encnet_res101_pcontext.sh; audit in docs/lau_seg.md). Paper: 49.08 mIoU.
# The LaU configs differ from this file only in the decode head / loss / offset lines.
_base_ = [
    'mmseg::_base_/models/encnet_r50-d8.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
crop_size = (480, 480)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=59),
    auxiliary_head=dict(num_classes=59, loss_decode=dict(loss_weight=0.2)),  # --aux-weight
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
# The official recipe's pipeline and heads' lr, as in the other EncNet baseline:
# restated, as mmengine refuses a key in two _base_ files (each has its dataset base).
# Backbone at lr, heads at 10 x lr (train.py:L68-L80, lr_scheduler.py:L66-L69).
# Short side base_size * U(0.5, 2) (encoding/datasets/base.py:L73-L80), crop 480;
# test: long side 520 (mmseg's Context test pipeline), 480 windows, stride 320.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(4096, 520), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(custom_keys={
        'decode_head': dict(lr_mult=10.0),
        'auxiliary_head': dict(lr_mult=10.0)}))
# 80 epochs x 312 iterations (4998 images, batch 16, drop_last); poly 0.9 to 0.
max_iters = 25000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
dataset_layout_hint = (
    'data/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,'
    'ImageSets/SegmentationContext/{train,val}.txt} (see mmseg '
    'docs/en/user_guides/2_dataset_prepare.md, Pascal Context)')
