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
    # The authors' backbone: ResNet-50 with the deep 64-64-128 stem (official
    # LaU-reg/encoding/dilated/resnet.py:L137-L154), strided 1x1 conv downsample, no
    # avg-down (L188-L192), stages 3/4 dilated 2/4 at stride 1 (L158-L172: the D8
    # strides / dilations of the base), from PyTorch-Encoding's ImageNet weights
    # (resnet.py:L253-L264, models/model_store.py:L12, L26-L27). Get them with
    #   wget https://hangzh.s3.amazonaws.com/encoding/models/resnet50-25c4b509.zip
    #   unzip resnet50-25c4b509.zip  # -> resnet50-25c4b509.pth (sha1 25c4b509...)
    #   python tools/model_converters/encoding_resnet_to_mmseg.py \
    #       resnet50-25c4b509.pth checkpoints/encoding_resnet50-25c4b509_mmseg.pth
    # (later PyTorch-Encoding calls it resnet50s). The LaU configs inherit it.
    pretrained=None,
    backbone=dict(
        stem_channels=128,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/encoding_resnet50-25c4b509_mmseg.pth')),
    # align_corners=True: the authors' resizes of the logits (encnet.py:L60, L62, L66);
    # CE means over labelled pixels, as PyTorch-Encoding's SegmentationLosses /
    # nn.CrossEntropyLoss (customize.py:L24-L29, L92, L152; LaU configs replace the
    # decode loss by the paper's, customize.py:L151)
    decode_head=dict(align_corners=True, loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(align_corners=True,  # --aux-weight default 0.2
                        loss_decode=dict(loss_weight=0.2, avg_non_ignore=True)),
    test_cfg=dict(_delete_=True, mode='slide', crop_size=crop_size, stride=(320, 320)))
# The official recipe's pipeline and heads' lr, as in the other EncNet baseline:
# restated, as mmengine refuses a key in two _base_ files (each has its dataset base).
# encoding/datasets/base.py:L66-L100: flip, short side base_size * U(0.5, 2), pad
# the raw image with 0 (label: ignore) to 480, random crop 480 (no category-ratio
# rule), Gaussian blur p=0.5 radius U(0, 1) (no photometric distortion).
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
# Long side 520, then 480 x 480 windows with stride 320 (MultiEvalModule).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
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
# The authors' evaluation (PyTorch-Encoding's MultiEvalModule, LaU-reg/encoding/models/
# base.py:L112-L186), multi-scale + flip as in scripts/encnet_res50_ade20k_train.sh:L9-L11
# (--ms; test.py:L67-L71): long side 520 x [0.5, ..., 1.75], zero-pixel padding to 480,
# 480 windows at stride 320, exp(logits + flipped logits) averaged over windows, summed
# over scales:
#   python tools/test.py CONFIG CKPT --tta
tta_model = dict(type='EncodingMultiEvalTTA', scales=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
                 flip=True, base_size=520, crop_size=480, stride_rate=2.0 / 3.0)
tta_pipeline = [  # the image at its own size: the model does the scales and the flip
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='LoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')]])
]
