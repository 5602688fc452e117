# PKD demo, distilled: the same RetinaNet-R18 student and schedule as
# pkd_retinanet_r18_plain.py, trained under the Faster R-CNN R18 demo teacher.
# The teacher's FPN gives P2-P6 (stride 4-64, 128 channels), the student's P3-P7
# (stride 8-128, 64 channels). Levels are paired as the authors do (configs/pkd/
# retina_r50.py): neck outputs 0..3, i.e. student P3..P6 with teacher P2..P5, the
# student map resized up to the teacher's; 1x1 adapters map the student's 64
# channels to the teacher's 128. (Stride pairing, P3..P6 with P3..P6, is the
# 'pkd_stride' variant of tools/benchmarks/bench_pkd.py.)
# The checkpoints hold the student alone (plus the adapters under distill_adapters.*),
# so tools/test.py tests them with this config or with pkd_retinanet_r18_plain.py.
_base_ = './pkd_retinanet_r18_plain.py'

model = dict(  # restated in each config: `student` is this file's own _base_ model
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
        pairing='index',
        levels=[0, 1, 2, 3],  # the authors' four levels
        adapter='auto'))
