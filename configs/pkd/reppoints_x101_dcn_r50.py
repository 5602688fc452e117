# PKD, homogeneous pair: RepPoints-moment X101-DCN (44.2 box AP) -> RepPoints R50, 2x.
# The counterpart of MMRazor's pkd_fpn_reppoints_x101-dcn_reppoints_r50_2x_coco.py
# (paper: 38.6 -> 42.3); differences: docs/pkd.md.
#   python tools/train.py configs/pkd/reppoints_x101_dcn_r50.py
# Loss weight 10 and lr 0.01, as the authors (inherited there from their RetinaNet
# X101 config). Both necks (GN FPN) give P3-P7: index pairing 0..3 is strides 8..64.
_base_ = [
    'mmdet::reppoints/reppoints-moment_r50_fpn-gn_head-gn_2x_coco.py',
    './_base_/pkd_coco.py',
]

model = dict(  # restated in each config: `student` is this file's own _base_ model
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::reppoints/'
        'reppoints-moment_x101-dconv-c3-c5_fpn-gn_head-gn_2x_coco.py',
        checkpoint='checkpoints/reppoints_moment_x101_fpn_dconv_c3-c5_gn-neck+head_2x_'
        'coco_20200329-f87da1ea.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/reppoints/'
        'reppoints_moment_x101_fpn_dconv_c3-c5_gn-neck%2Bhead_2x_coco/'
        'reppoints_moment_x101_fpn_dconv_c3-c5_gn-neck%2Bhead_2x_coco_20200329-'
        'f87da1ea.pth',
        train_mode='norm_eval'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=10.0, resize='student'),
        pairing='index',
        levels=[0, 1, 2, 3],
        adapter='auto'))
