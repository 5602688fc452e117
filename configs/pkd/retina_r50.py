# PKD (Cao et al., NeurIPS 2022): Mask R-CNN Swin-S (48.2 box AP) -> RetinaNet R50, 2x.
#   python tools/train.py configs/pkd/retina_r50.py
#   tools/dist_train.sh configs/pkd/retina_r50.py 8
# Teacher P2-P6 vs student P3-P7: levels are paired by stride (8, 16, 32, 64), not by
# index; both FPNs have 256 channels, so no adapter is created.
# The checkpoints hold the student only: test/deploy them with the student's config,
#   python tools/test.py mmdet::retinanet/retinanet_r50_fpn_2x_coco.py <ckpt>
# (see docs/pkd.md; tools/convert_distill_checkpoint.py strips the training state).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',  # student, data, 2x schedule
    './_base_/pkd_coco.py',
]

model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
        checkpoint='checkpoints/mask_rcnn_swin-s-p4-w7_fpn_fp16_ms-crop-3x_coco_'
        '20210903_104808-b92c91f1.pth',
        checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/swin/'
        'mask_rcnn_swin-s-p4-w7_fpn_fp16_ms-crop-3x_coco/mask_rcnn_swin-s-p4-w7_fpn_'
        'fp16_ms-crop-3x_coco_20210903_104808-b92c91f1.pth'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0),
        pairing='stride',
        levels=[8, 16, 32, 64],
        adapter='auto'))
