# PKD, homogeneous pair: Faster R-CNN R101 (39.8 box AP) -> Faster R-CNN R50, 2x.
# The counterpart of MMRazor's pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco.py
# (paper: 38.4 -> 40.4); differences: docs/pkd.md.
#   python tools/train.py configs/pkd/faster_rcnn_r101_r50.py
# Both necks give P2-P6: the authors' index pairing 0..3 is strides 4..32 on both.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    './_base_/pkd_coco.py',
]

model = dict(  # restated in each config: `student` is this file's own _base_ model
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        checkpoint='checkpoints/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_'
        '20200504_210455-1d2dac9c.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
        'faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_'
        '20200504_210455-1d2dac9c.pth',
        train_mode='norm_eval'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0, resize='student'),
        pairing='index',
        levels=[0, 1, 2, 3],
        adapter='auto'))
