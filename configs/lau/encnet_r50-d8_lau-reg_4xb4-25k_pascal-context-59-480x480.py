# PASCAL Context, EncNet R50-D8 + LaU (k=4, the authors' offset branch, C'=128),
# regression loss (Eq. 4, lambda=0.3, gamma=0.1: --offset-weight 0.3
# --location-weight 0.1 of scripts/encnet_res101_pcontext.sh).
_base_ = './encnet_r50-d8_4xb4-25k_pascal-context-59-480x480_bilinear.py'
model = dict(
    decode_head=dict(
        type='LaUHead', head='EncHead',
        lau_factor=4, lau_offset_branch=dict(mid_channels=128),
        loss_decode=dict(_delete_=True, type='LaURegressionLoss', lambda_=0.3,
                         gamma=0.1)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'decode_head.offset_branch': dict(lr_mult=10.0, decay_mult=0.0)}))
