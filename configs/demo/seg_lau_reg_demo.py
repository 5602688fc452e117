# configs/demo/seg_lau_demo.py with the regression loss (Eq. 4, lambda=0.3,
# gamma=0.1) instead of the offset-guided one (used by the miniature paper table).
_base_ = './seg_lau_demo.py'
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type='LaURegressionLoss', lambda_=0.3,
                         gamma=0.1)))
