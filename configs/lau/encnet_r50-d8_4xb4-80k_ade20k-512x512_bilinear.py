# Baseline of the paper's ADE20K table: mmseg's EncNet R50-D8, 80k iterations.
# Paper (multi-scale): 41.11 mIoU.
_base_ = 'mmseg::encnet/encnet_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
dataset_layout_hint = (
    'data/ade/ADEChallengeData2016/{images,annotations}/{training,validation} '
    '(see mmseg docs/en/user_guides/2_dataset_prepare.md, ADE20K)')
