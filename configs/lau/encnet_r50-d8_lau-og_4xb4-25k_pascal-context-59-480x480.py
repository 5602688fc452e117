# PASCAL Context, EncNet R50-D8 + LaU (k=4 on the stride-8 logits, the authors' offset
# branch, C'=128), offset-guided loss (Eq. 3, lambda=0.3). Paper: 50.27 mIoU
# (baseline 49.08). The offset branch learns at the head's lr, without weight decay.
_base_ = './encnet_r50-d8_4xb4-25k_pascal-context-59-480x480_bilinear.py'
# Restated per dataset (as in the other EncNet LaU config): mmengine refuses a key
# in two _base_ files, so this model/optim_wrapper change cannot be a shared base.
model = dict(
    decode_head=dict(
        type='LaUHead', head='EncHead',
        lau_factor=4, lau_offset_branch=dict(mid_channels=128),
        loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss', lambda_=0.3)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'decode_head.offset_branch': dict(lr_mult=10.0, decay_mult=0.0)}))
