# The "no flows" ablation of the demo: four independent towers, all else equal.
_base_ = './spatialflow_r18_demo.py'
model = dict(bbox_head=dict(with_flows=False))
