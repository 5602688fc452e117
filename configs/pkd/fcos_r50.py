# PKD: Mask R-CNN Swin-S (48.2 box AP) -> FCOS R50 (caffe, GN head, ms 640-800), 2x.
#   python tools/train.py configs/pkd/fcos_r50.py
# Differs from retina_r50.py only in the student (`_base_`). The student takes
# caffe-normalised BGR inputs, the Swin teacher ImageNet-normalised RGB: the distiller
# re-normalises the teacher's input from the two data_preprocessors.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    './_base_/pkd_coco.py',
]

model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher={{_base_.swin_s_teacher}},
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0),
        pairing='stride',
        levels=[8, 16, 32, 64],
        adapter='auto'))
