# The demo schedule (from scratch on 2 CPU cores), shared by the RetinaNet, SpatialFlow
# and PKD-teacher demos: max_iters AdamW iterations with warm-up, cosine decay and
# gradient clipping, one checkpoint at the end, a fixed seed. mmdet's schedule_1x
# and default_runtime give the rest (val/test loops, hooks).
# A config that changes max_iters restates param_scheduler: a list is replaced, never
# merged, and its end was computed from this file's max_iters.
_base_ = [
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]

max_iters = 500
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
# From scratch, SGD at lr 0.01 learns nothing in a few hundred iterations;
# AdamW with warmup and clipping does.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=8)
# A fixed seed: the demo prints the same numbers on every run of the same machine.
randomness = dict(seed=0)
