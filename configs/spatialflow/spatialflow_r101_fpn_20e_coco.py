# SpatialFlow R101-FPN, COCO panoptic, 20 epochs. Target: PQ 43.4 / PQ-Th 50.4 /
# PQ-St 32.8 on COCO val (configs/spatialflow/README.md).
_base_ = './spatialflow_r50_fpn_20e_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
