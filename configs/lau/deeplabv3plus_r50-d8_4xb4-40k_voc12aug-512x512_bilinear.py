# Baseline of the paper's PASCAL VOC 2012 table: mmseg's DeepLabV3+ R50-D8 (the
# decoder's stride-4 logits are bilinearly upsampled x4). Paper: 76.52 mIoU.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
dataset_layout_hint = (
    'data/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,SegmentationClassAug,'
    'ImageSets/Segmentation/{train,val,aug}.txt} (VOC 2012 + SBD aug, see mmseg '
    'docs/en/user_guides/2_dataset_prepare.md)')
