# PKD, homogeneous pair: Faster R-CNN R101 (39.8 box AP) -> Faster R-CNN R50, 2x.
#   python tools/train.py configs/pkd/faster_rcnn_r101_r50.py
# Differs from retina_r50.py in the student, the teacher and the distilled strides
# (both necks give P2-P6; MMRazor's levels 0..3 are strides 4-32).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    './_base_/pkd_coco.py',
]

model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        checkpoint='checkpoints/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_'
        '20200504_210455-1d2dac9c.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
        'faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_'
        '20200504_210455-1d2dac9c.pth'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0),
        pairing='stride',
        levels=[4, 8, 16, 32],
        adapter='auto'))
