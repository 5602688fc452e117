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
    # The authors' backbone: ResNet-50 with the deep 64-64-128 stem (official
    # LaU-reg/encoding/dilated/resnet.py:L137-L154, downsample L188-L192, dilation
    # L158-L172) from PyTorch-Encoding's ImageNet weights (models/model_store.py:L12,
    # L26-L27); download + conversion as in the ADE20K baseline config:
    #   python tools/model_converters/encoding_resnet_to_mmseg.py \
    #       resnet50-25c4b509.pth checkpoints/encoding_resnet50-25c4b509_mmseg.pth
    # The LaU configs inherit it.
    pretrained=None,
    backbone=dict(
        stem_channels=128,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/encoding_resnet50-25c4b509_mmseg.pth')),
    # align_corners=True: the authors' resizes of the logits (encnet.py:L60, L62, L66);
    # CE means over labelled pixels, as PyTorch-Encoding's SegmentationLosses /
    # nn.CrossEntropyLoss (customize.py:L24-L29, L92, L152; LaU configs replace the
    # decode loss by the paper's, customize.py:L151)
    decode_head=dict(num_classes=59, align_corners=True,
                     loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(num_classes=59, align_corners=True,  # --aux-weight 0.2
                        loss_decode=dict(loss_weight=0.2, avg_non_ignore=True)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
# The official recipe's pipeline and heads' lr, as in the other EncNet baseline:
# restated, as mmengine refuses a key in two _base_ files (each has its dataset base).
# Backbone at lr, heads at 10 x lr (train.py:L68-L80, lr_scheduler.py:L66-L69).
# encoding/datasets/base.py:L66-L100: flip, short side base_size * U(0.5, 2), pad
# the raw image with 0 (label: ignore) to 480, random crop 480 (no category-ratio
# rule), Gaussian blur p=0.5 radius U(0, 1) (no photometric distortion);
# test: long side 520 (mmseg's Context test pipeline), 480 windows, stride 320.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),  # first: the padding stays bottom/right
    dict(type='RandomResize', scale=(4096, 520), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='Pad', size=crop_size, pad_val=dict(img=0, seg=255)),
    dict(type='PILGaussianBlur', prob=0.5, max_radius=1.0),
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
max_iters = 4998 // 16 * 80  # 24,960
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
dataset_layout_hint = (
    'data/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,'
    'ImageSets/SegmentationContext/{train,val}.txt} (see mmseg '
    'docs/en/user_guides/2_dataset_prepare.md, Pascal Context)')
# The authors' evaluation (PyTorch-Encoding's MultiEvalModule, LaU-reg/encoding/models/
# base.py:L112-L186): long side 520, zero-pixel padding to 480, 480 windows at stride
# 320, exp(logits + flipped logits) averaged over windows, summed over scales.
# Context was tested single scale without flip (scripts/encnet_res101_pcontext.sh:L8-L10
# leaves --ms commented out; test.py:L69-L71: scales [1.0], flip=args.ms):
#   python tools/test.py CONFIG CKPT --tta
# Multi-scale + flip (test.py:L67-L68): --tta --cfg-options tta_model.flip=True
#   "tta_model.scales=[0.5,0.75,1.0,1.25,1.5,1.75]"
tta_model = dict(type='EncodingMultiEvalTTA', scales=[1.0], flip=False, base_size=520,
                 crop_size=480, stride_rate=2.0 / 3.0)
tta_pipeline = [  # the image at its own size: the model does the scales and the flip
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='LoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')]])
]
