# The paper's PASCAL VOC 2012 setting: DeepLabV3+ R50-D8 whose decoder upsampler
# (stride-4 logits -> input) is LaU, k=4, the authors' offset branch (C'=128),
# offset-guided loss (lambda=0.3). Paper: 78.55 mIoU (baseline 76.52). No official
# VOC script exists: mmseg's DeepLabV3+ recipe is kept for both (head at the base lr),
# so the offset branch learns at the head's lr (lr_mult 1), without weight decay.
_base_ = './deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512_bilinear.py'
# The LaU head change of the EncNet LaU configs, restated: mmengine refuses a key
# in two _base_ files, so it cannot be a shared base.
model = dict(
    decode_head=dict(
        type='LaUHead', head='DepthwiseSeparableASPPHead',
        lau_factor=4, lau_offset_branch=dict(mid_channels=128),
        loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss', lambda_=0.3)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'decode_head.offset_branch': dict(lr_mult=1.0, decay_mult=0.0)}))
