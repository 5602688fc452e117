# PKD, heterogeneous one-stage pair: FCOS X101-64x4d (42.6 box AP) -> RetinaNet R50, 1x.
# The counterpart of MMRazor's pkd_fpn_fcos_x101_retina_r50_1x_coco.py
# (paper: 36.5 -> 40.3); differences: docs/pkd.md.
#   python tools/train.py configs/pkd/fcos_x101_retina_r50_1x.py
# Loss weight 10 and lr 0.01, as the authors (inherited there from their RetinaNet
# X101 config); 1x schedule (12 epochs, steps at 8 and 11) from the student config.
# Both necks give P3-P7: index pairing 0..3 is strides 8..64 on both.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    './_base_/pkd_coco.py',
]

model = dict(  # restated in each config: `student` is this file's own _base_ model
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::fcos/fcos_x101-64x4d_fpn_gn-head_ms-640-800-2x_coco.py',
        checkpoint='checkpoints/fcos_x101_64x4d_fpn_gn-head_mstrain_640-800_2x_coco-'
        'ede514a8.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
        'fcos_x101_64x4d_fpn_gn-head_mstrain_640-800_2x_coco/'
        'fcos_x101_64x4d_fpn_gn-head_mstrain_640-800_2x_coco-ede514a8.pth',
        train_mode='norm_eval'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=10.0, resize='student'),
        pairing='index',
        levels=[0, 1, 2, 3],
        adapter='auto'))
