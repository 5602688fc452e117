# PKD (Cao et al., NeurIPS 2022): Mask R-CNN Swin-S (48.2 box AP) -> RetinaNet R50, 2x.
# The counterpart of the authors' MMRazor config
#   configs/distill/mmdet/pkd/pkd_fpn_mask-rcnn_swin_retina_r50_2x_coco.py
# (paper: 37.4 -> 41.5 box AP); every difference is listed in docs/pkd.md.
#   python tools/train.py configs/pkd/retina_r50.py
#   tools/dist_train.sh configs/pkd/retina_r50.py 8
# Levels paired as the authors do, by neck output index 0..3: teacher P2..P5
# (strides 4..32) with student P3..P6 (strides 8..64), the student map resized
# bilinearly up to the teacher's size inside PKDLoss. Both FPNs have 256 channels,
# so no adapter is created. Stride pairing: retina_r50_ablation_stride_pairing.py.
# The checkpoints hold the student only: test/deploy them with the student's config,
#   python tools/test.py mmdet::retinanet/retinanet_r50_fpn_2x_coco.py <ckpt>
# (see docs/pkd.md; tools/convert_distill_checkpoint.py strips the training state).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',  # student, data, 2x schedule
    './_base_/pkd_coco.py',
]

model = dict(  # restated in each config: `student` is this file's own _base_ model
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher={{_base_.swin_s_teacher}},
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0, resize='student'),
        pairing='index',
        levels=[0, 1, 2, 3],
        adapter='auto'))
