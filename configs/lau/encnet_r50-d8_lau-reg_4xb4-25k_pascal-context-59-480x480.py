# PASCAL Context, EncNet R50-D8 + LaU (k=4, the authors' offset branch, C'=128),
# regression loss (Eq. 4, lambda=0.3, gamma=0.1: --offset-weight 0.3
# --location-weight 0.1 of scripts/encnet_res101_pcontext.sh).
# The LaU-og config with the regression loss instead of the offset-guided one.
_base_ = './encnet_r50-d8_lau-og_4xb4-25k_pascal-context-59-480x480.py'
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type='LaURegressionLoss', lambda_=0.3,
                         gamma=0.1)))
