# PKD, homogeneous pair: RetinaNet X101-64x4d (41.0 box AP) -> RetinaNet R50, 2x.
# The counterpart of MMRazor's pkd_fpn_retina_x101_retina_r50_2x_coco.py
# (paper: 37.4 -> 40.8); differences: docs/pkd.md.
#   python tools/train.py configs/pkd/retina_x101_r50.py
# Differs from retina_r50.py in the teacher and the loss weight (10, as the authors).
# Both necks give P3-P7, so the authors' index pairing 0..3 is strides 8..64 on both.
_base_ = './retina_r50.py'

model = dict(
    teacher=dict(
        _delete_=True,  # another teacher: none of the Swin one's settings
        config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
        checkpoint='checkpoints/retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_x101_64x4d_fpn_1x_coco/'
        'retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth',
        train_mode='norm_eval'),
    distill=dict(loss=dict(loss_weight=10.0)))
