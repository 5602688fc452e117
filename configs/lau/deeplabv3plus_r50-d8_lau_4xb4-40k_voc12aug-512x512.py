# The paper's PASCAL VOC 2012 LaU setting: DeepLabV3+ R50-D8 whose decoder upsampler
# (stride-4 logits -> input) is LaU, k=4, offset-guided loss (lambda=0.3).
# Paper: 78.55 mIoU (baseline 76.52). Differs from the baseline in head/loss/optim lines.
_base_ = './deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512_bilinear.py'
model = dict(
    decode_head=dict(
        type='LaUSepASPPHead',
        lau_factor=4, lau_groups=1, lau_offset_branch=dict(mid_channels=128),
        loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss', lambda_=0.3)))
optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys={'lau_offset_branch': dict(lr_mult=10.0, decay_mult=0.0)}))
