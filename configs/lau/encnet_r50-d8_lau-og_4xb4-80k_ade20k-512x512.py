# ADE20K, EncNet R50-D8 + LaU (k=4), offset-guided loss. Paper (ms): 42.78 mIoU.
_base_ = './encnet_r50-d8_4xb4-80k_ade20k-512x512_bilinear.py'
model = dict(
    decode_head=dict(
        type='LaUHead', head='EncHead',
        lau_factor=4, lau_groups=1, lau_offset_branch=dict(mid_channels=128),
        loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss', lambda_=0.3)))
optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys={'lau_offset_branch': dict(lr_mult=10.0, decay_mult=0.0)}))
