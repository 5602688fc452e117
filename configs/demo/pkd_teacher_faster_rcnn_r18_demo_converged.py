# PKD demo teacher trained until its val mAP stops rising (issue #11): the demo
# teacher (Faster R-CNN R18, 128-channel FPN P2-P6) on a longer schedule, validated
# every 100 iterations on the 100 demo val images, the best checkpoint kept, training
# stopped early once the mAP has not risen for 3 validations in a row.
#   python tools/train.py configs/demo/pkd_teacher_faster_rcnn_r18_demo_converged.py
# Used by tools/benchmarks/bench_pkd.py --part teacher (the 300-iteration teacher of
# the `make demo` run is too weak to teach: 0.175 mAP).
_base_ = './pkd_teacher_faster_rcnn_r18_demo.py'

max_iters = 500  # cap: the CPU budget of the benchmark (2 shared cores)
val_interval = 100
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=val_interval)
val_cfg = dict(_delete_=True, type='ValLoop')  # the base has val_cfg = None
val_dataloader = dict(  # the demo val split (= test_dataloader of the base)
    _delete_=True,
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.test_dataloader.dataset}})
val_evaluator = dict(
    _delete_=True, type='CocoMetric', metric='bbox', format_only=False,
    ann_file='data/demo/annotations/instances_val.json')
# Restated for max_iters = 500: a list replaces the base's whole list.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=val_interval,
                    max_keep_ckpts=1, save_best='coco/bbox_mAP', rule='greater'))
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='coco/bbox_mAP', rule='greater',
         min_delta=0.002, patience=3),
]
