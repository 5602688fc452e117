# PKD demo, baseline: the RetinaNet-R18 demo student on the short schedule that the
# distilled student (pkd_retinanet_r18_distill.py) uses, without a teacher.
_base_ = './retinanet_r18_demo.py'

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# No validation during training (run_demo / tools/test.py evaluate afterwards).
val_cfg = None
val_dataloader = None
val_evaluator = None
# Restated for max_iters = 200: a list replaces the base's whole list.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
