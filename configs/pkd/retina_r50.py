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
    teacher={{_base_.swin_s_teacher}},
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0),
        pairing='stride',
        levels=[8, 16, 32, 64],
        adapter='auto'))
