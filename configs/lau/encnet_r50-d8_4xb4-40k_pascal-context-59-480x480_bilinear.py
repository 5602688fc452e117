# Baseline of the paper's PASCAL Context table: EncNet R50-D8 (mmseg 1.x ships EncNet
# for VOC/ADE20K/Cityscapes only; this is its Context-59 setting, schedule and test
# mode of mmseg's DeepLabV3+ Context-59 config). Paper: 49.08 mIoU.
_base_ = [
    'mmseg::_base_/models/encnet_r50-d8.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
crop_size = (480, 480)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=59),
    auxiliary_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=(480, 480), stride=(320, 320)))
optimizer = dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
dataset_layout_hint = (
    'data/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,'
    'ImageSets/SegmentationContext/{train,val}.txt} (see mmseg '
    'docs/en/user_guides/2_dataset_prepare.md, Pascal Context)')
