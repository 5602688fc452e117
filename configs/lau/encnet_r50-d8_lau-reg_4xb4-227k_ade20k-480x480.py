# ADE20K, EncNet R50-D8 + LaU (k=4, the authors' offset branch, C'=128), regression
# loss (Eq. 4): the setting of scripts/encnet_res50_ade20k_train.sh (--offset-weight
# 0.3 --location-weight 0.1 --bottleneck-channel 128); what mmseg cannot express the
# same way is listed in docs/lau_seg.md's audit. Paper (ms + flip): 42.41 mIoU.
# The LaU-og config with the regression loss instead of the offset-guided one.
_base_ = './encnet_r50-d8_lau-og_4xb4-227k_ade20k-480x480.py'
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type='LaURegressionLoss', lambda_=0.3,
                         gamma=0.1)))
