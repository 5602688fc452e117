# LaU demo: configs/demo/seg_bilinear_demo.py with the FCN head's final bilinear
# upsampling replaced by LaU (k=4: 20x20 logits -> 80x80, then the usual resize to
# 160x160; the authors' offset branch with C'=32) and the offset-guided loss (Eq. 3).
# Only head/loss/optimizer lines differ.
_base_ = './seg_bilinear_demo.py'
model = dict(
    decode_head=dict(
        type='LaUHead', head='FCNHead',
        lau_factor=4,
        lau_offset_branch=dict(mid_channels=32),
        loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss', lambda_=0.3)))
# Offset branch: the head's lr (the head runs at the base lr here) and no weight
# decay, as the official code (train.py:L73).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'decode_head.offset_branch': dict(lr_mult=1.0, decay_mult=0.0)}))
