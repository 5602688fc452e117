# Ablation: SpatialFlow R50 without the spatial information flows (four independent
# towers; everything else as spatialflow_r50_fpn_20e_coco.py).
_base_ = './spatialflow_r50_fpn_20e_coco.py'
model = dict(bbox_head=dict(with_flows=False))
