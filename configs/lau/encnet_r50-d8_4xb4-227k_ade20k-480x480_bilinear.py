# Baseline of the paper's ADE20K table: EncNet R50-D8, bilinear upsampling, with the
# official recipe of LaU-reg/experiments/segmentation/scripts/encnet_res50_ade20k_train.sh
# (lr 0.004, 180 epochs, crop 480, base size 520; audit in docs/lau_seg.md).
# Paper (multi-scale + flip: tools/test.py --tta): 41.11 mIoU.
_base_ = 'mmseg::encnet/encnet_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
crop_size = (480, 480)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.2)),  # --aux-weight default
    test_cfg=dict(_delete_=True, mode='slide', crop_size=crop_size, stride=(320, 320)))
# The official recipe's pipeline and heads' lr, as in the other EncNet baseline:
# restated, as mmengine refuses a key in two _base_ files (each has its dataset base).
# Short side base_size * U(0.5, 2) (encoding/datasets/base.py:L73-L80), crop 480.
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
# Long side 520, then 480 x 480 windows with stride 320 (MultiEvalModule).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(520 * r), int(520 * r)), keep_ratio=True)
         for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')]])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# Backbone at lr, heads at 10 x lr (train.py:L68-L80, lr_scheduler.py:L66-L69).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(custom_keys={
        'decode_head': dict(lr_mult=10.0),
        'auxiliary_head': dict(lr_mult=10.0)}))
# 180 epochs x 1263 iterations (20210 images, batch 16, drop_last); poly 0.9 to 0.
max_iters = 227340
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=16000))
dataset_layout_hint = (
    'data/ade/ADEChallengeData2016/{images,annotations}/{training,validation} '
    '(see mmseg docs/en/user_guides/2_dataset_prepare.md, ADE20K)')
