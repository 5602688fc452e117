# Evaluate the SpatialFlow demo model through the Cityscapes path: the same demo
# scenes in the Cityscapes layout (data/demo/cityscapes, Cityscapes label ids and
# file names) scored by CityscapesPanopticMetric (cityscapesScripts' PQ code).
#   python tools/test.py configs/demo/spatialflow_r18_demo_cityscapes.py <demo ckpt>
_base_ = './spatialflow_r18_demo.py'

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DemoCityscapesPanopticDataset',  # data_root: data/demo/cityscapes
        ann_file='gtFine/cityscapes_panoptic_val.json',
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CityscapesPanopticMetric',
    data_root='data/demo/cityscapes/',
    gt_json='gtFine/cityscapes_panoptic_val.json')
test_evaluator = val_evaluator
