# PKD demo, distilled: the same RetinaNet-R18 student and schedule as
# pkd_retinanet_r18_plain.py, trained under the Faster R-CNN R18 demo teacher.
# The teacher's FPN gives P2-P6 (stride 4-64, 128 channels), the student's P3-P7
# (stride 8-128, 64 channels): levels are paired by stride (8, 16, 32, 64) and
# 1x1 adapters map the student's 64 channels to the teacher's 128.
# The checkpoints hold the student alone (plus the adapters under distill_adapters.*),
# so tools/test.py tests them with this config or with pkd_retinanet_r18_plain.py.
_base_ = './pkd_retinanet_r18_plain.py'

model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmext::demo/pkd_teacher_faster_rcnn_r18_demo.py',
        # written by: python tools/train.py configs/demo/pkd_teacher_faster_rcnn_r18_demo.py
        #             --work-dir work_dirs/demo/pkd_teacher_faster_rcnn_r18_demo
        checkpoint='work_dirs/demo/pkd_teacher_faster_rcnn_r18_demo/iter_300.pth'),
    distill=dict(
        loss=dict(type='PKDLoss', loss_weight=6.0),  # the paper's Mask R-CNN -> RetinaNet weight
        pairing='stride',
        levels=None,  # every stride both necks have: 8, 16, 32, 64
        adapter='auto'))
