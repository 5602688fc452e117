"""SpatialFlow R50 vs mmdet's Panoptic FPN R50: inference time per image, where the
time goes, parameters and FLOPs; both measured in the same run on the same input.

    python tools/benchmarks/bench_spatialflow.py                 # 800x1216, 5 runs
    python tools/benchmarks/bench_spatialflow.py --size 512 768 --runs 10 --device cuda

Both models are built from their COCO configs (80 thing + 53 stuff classes) with
random weights. So that both do the work a trained model does, their detection score
thresholds are set to 0: each pastes max_per_img = 100 instance masks (Panoptic FPN
also keeps its RPN's 1000 proposals). Runs alternate between the models; the median
of ``--runs`` timed runs after ``--warmup`` is reported, and the ratio
SpatialFlow / Panoptic FPN. FLOPs are counted with mmengine's FlopAnalyzer (one
multiply-add = 1 FLOP, as mmdet's get_flops) for the dense part at the input size,
plus the RoI heads at their fixed RoI counts; RoIAlign, NMS and fusion are not counted.

With ``--checkpoint`` (a SpatialFlow checkpoint trained with ``--demo-config``, e.g.
``work_dirs/spatialflow_r18_demo/iter_500.pth`` from ``tools/train.py
configs/demo/spatialflow_r18_demo.py``) the same run adds the demo model at the demo
size on ``--demo-images`` demo val images: the trained weights with the config's
default thresholds (what a user's model does) next to random weights with the
thresholds at 0 (the worst case above, at the demo size), with their ratio.

    python tools/benchmarks/bench_spatialflow.py --checkpoint work_dirs/spatialflow_r18_demo/iter_500.pth
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

SPATIALFLOW = osp.join(ROOT, 'configs/spatialflow/spatialflow_r50_fpn_20e_coco.py')
PANOPTIC_FPN = 'panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'  # in mmdet's configs
DEMO = osp.join(ROOT, 'configs/demo/spatialflow_r18_demo.py')


def build(name: str, device: str) -> nn.Module:
    import mmext  # noqa: F401
    from mmengine.config import Config
    from mmengine.utils import get_installed_path
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    if name == 'spatialflow':
        cfg = Config.fromfile(SPATIALFLOW)
        cfg.model.test_cfg.score_thr = 0.0
        cfg.model.test_cfg.panoptic.score_thr = 0.0
    else:
        cfg = Config.fromfile(osp.join(get_installed_path('mmdet'), '.mim', 'configs',
                                       PANOPTIC_FPN))
        cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.model.backbone.init_cfg = None  # no download; weights do not change the cost
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).eval()


def make_input(h: int, w: int, device: str):
    from mmdet.structures import DetDataSample
    torch.manual_seed(1)
    inputs = torch.randn(1, 3, h, w, device=device)
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
        scale_factor=(1.0, 1.0), img_id=0))
    return inputs, [sample]


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def stages(name: str, model: nn.Module, inputs: torch.Tensor, samples: list
           ) -> List[Tuple[str, Callable[[dict], None]]]:
    """``model.predict`` split into named steps that pass a state dict along."""
    metas = [s.metainfo for s in samples]
    if name == 'spatialflow':
        def fuse(s):  # as SpatialFlow.predict: the model's SpatialFlowFusion
            det = s['dets'][0]
            model.fusion(det.masks.bool(), det.scores, det.labels, det.bboxes,
                         s['stuff'][0])
        return [
            ('backbone + FPN', lambda s: s.update(x=model.extract_feat(inputs))),
            ('four towers (all levels)', lambda s: s.update(o=model.bbox_head(s['x']))),
            ('box post-processing (NMS)', lambda s: s.update(
                dets=model.bbox_head.predict_by_feat(*s['o'][:2], batch_img_metas=metas))),
            ('mask branch (100 RoIs) + paste', lambda s: s.update(
                dets=model.mask_branch.predict(s['o'][3], metas, s['dets']))),
            ('stuff head + label map', lambda s: s.update(
                stuff=model.stuff_head.predict_labels(s['o'][2], metas))),
            ('fusion', fuse),
        ]
    return [
        ('backbone + FPN', lambda s: s.update(x=model.extract_feat(inputs))),
        ('RPN (head + proposals)', lambda s: s.update(
            props=model.rpn_head.predict(s['x'], samples, rescale=False))),
        ('RoI box head (1000 RoIs) + NMS', lambda s: s.update(
            dets=model.roi_head.predict_bbox(s['x'], metas, s['props'],
                                             model.roi_head.test_cfg, rescale=False))),
        ('mask head (100 RoIs) + paste', lambda s: s.update(
            dets=model.roi_head.predict_mask(s['x'], metas, s['dets'], rescale=True))),
        ('semantic head + resize', lambda s: s.update(
            seg=model.semantic_head.predict(s['x'], metas, True))),
        ('fusion', lambda s: model.panoptic_fusion_head.predict(s['dets'], s['seg'])),
    ]


def time_stages(name, model, inputs, samples, device) -> Dict[str, float]:
    state: dict = {}
    times = {}
    with torch.no_grad():
        for stage, fn in stages(name, model, inputs, samples):
            _sync(device)
            t0 = time.perf_counter()
            fn(state)
            _sync(device)
            times[stage] = time.perf_counter() - t0
    return times


def time_predict(model, inputs, samples, device) -> float:
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        out = model.predict(inputs, samples)
        _sync(device)
    assert out[0].pred_panoptic_seg.sem_seg.shape[-2:] == inputs.shape[-2:]
    return time.perf_counter() - t0


class _Call(nn.Module):
    """Wraps a function of the model so that FlopAnalyzer can trace it."""

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x):
        return self.fn(x)


def flops(name: str, model: nn.Module, h: int, w: int) -> Dict[str, float]:
    from mmengine.analysis import FlopAnalyzer

    def count(fn, *shape):
        analyzer = FlopAnalyzer(_Call(model, fn), (torch.randn(*shape),))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analyzer.total() / 1e9

    model = model.cpu()
    if name == 'spatialflow':
        def dense(x):
            feats = model.extract_feat(x)
            cls, box, stuff, mask = model.bbox_head(feats)
            return cls, box, mask, model.stuff_head(stuff)['seg_preds']
        return {'dense (backbone, FPN, towers, stuff head)': count(dense, 1, 3, h, w),
                'mask head x100 RoIs': count(model.mask_branch.mask_head, 100, 256, 14, 14)}

    def dense(x):
        feats = model.extract_feat(x)
        return model.rpn_head(feats), model.semantic_head(feats)['seg_preds']
    return {'dense (backbone, FPN, RPN head, semantic head)': count(dense, 1, 3, h, w),
            'box head x1000 RoIs': count(model.roi_head.bbox_head, 1000, 256, 7, 7),
            'mask head x100 RoIs': count(model.roi_head.mask_head, 100, 256, 14, 14)}


def build_demo(config: str, checkpoint, device: str) -> nn.Module:
    """The demo SpatialFlow: ``checkpoint``'s weights with the config's thresholds,
    or (``checkpoint=None``) random weights with every score threshold at 0."""
    import mmext  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config)
    cfg.model.output_instances = True  # only attaches the detections: counted below
    if checkpoint is None:
        cfg.model.test_cfg.score_thr = 0.0
        cfg.model.test_cfg.panoptic.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        model.init_weights()
    else:
        # strict: a checkpoint of another config must not load half-way.
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    return model.to(device).eval()


def demo_batches(config: str, num: int, device: str, model: nn.Module) -> list:
    """The first ``num`` demo val images, preprocessed: [(inputs, samples), ...]."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmdet.registry import DATASETS
    cfg = Config.fromfile(config)
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.data_root = osp.join(ROOT, dataset_cfg.data_root)  # written on first use
    dataset = DATASETS.build(dataset_cfg)
    batches = []
    for i in range(min(num, len(dataset))):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        batches.append((data['inputs'].to(device), data['data_samples']))
    return batches


def time_demo(model: nn.Module, batches: list, device: str) -> Tuple[float, float, float]:
    """Mean seconds per image of ``predict``, mean detections (masks computed) and
    mean thing segments in the panoptic map per image."""
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    seconds = dets = segments = 0.0
    with torch.no_grad():
        for inputs, samples in batches:
            _sync(device)
            t0 = time.perf_counter()
            out = model.predict(inputs, samples)[0]
            _sync(device)
            seconds += time.perf_counter() - t0
            dets += len(out.pred_instances)
            pan = out.pred_panoptic_seg.sem_seg
            segments += len(torch.unique(pan[pan >= INSTANCE_OFFSET]))
    n = len(batches)
    return seconds / n, dets / n, segments / n


def bench_demo(args) -> None:
    """Trained checkpoint (default thresholds) vs random weights (thresholds 0) on the
    demo model and images; runs alternate, median of ``--runs``."""
    models = {'trained': build_demo(args.demo_config, args.checkpoint, args.device),
              'worst': build_demo(args.demo_config, None, args.device)}
    batches = demo_batches(args.demo_config, args.demo_images, args.device,
                           models['trained'])
    for _ in range(args.warmup):
        for model in models.values():
            time_demo(model, batches, args.device)
    runs = {n: [] for n in models}
    for _ in range(args.runs):
        for n, model in models.items():
            runs[n].append(time_demo(model, batches, args.device))
    h, w = batches[0][0].shape[-2:]
    cfg = models['trained'].test_cfg
    print(f'\nDemo model {osp.relpath(args.demo_config, ROOT)} at the demo size '
          f'(1x3x{h}x{w}), {len(batches)} demo val images, median of {args.runs} runs '
          'of the mean per image\n')
    print('| weights | thresholds (box / panoptic) | detections (masks) per image | '
          'thing segments per image | predict() per image | ratio |')
    print('|---|---|---|---|---|---|')
    med = {n: statistics.median(r[0] for r in runs[n]) for n in models}
    rows = [('trained: ' + osp.basename(args.checkpoint),
             f'{cfg.score_thr} / {cfg.panoptic.score_thr} (config)', 'trained'),
            ('random', '0 / 0 (worst case)', 'worst')]
    for label, thresholds, n in rows:
        _, dets, segments = runs[n][0]  # counts do not change between runs
        print(f'| {label} | {thresholds} | {dets:.1f} | {segments:.1f} | '
              f'{med[n] * 1000:.1f} ms | {med[n] / med["worst"]:.2f} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, nargs=2, default=[800, 1216],
                        metavar=('H', 'W'), help='input size (multiple of 32)')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--checkpoint', help='a checkpoint of --demo-config: adds '
                        'its rows (trained, default thresholds vs random, worst case)')
    parser.add_argument('--demo-config', default=DEMO)
    parser.add_argument('--demo-images', type=int, default=8,
                        help='demo val images timed per run (with --checkpoint)')
    args = parser.parse_args()
    if args.checkpoint and not osp.isfile(args.checkpoint):
        parser.error(f'--checkpoint {args.checkpoint}: no such file (train one with '
                     'tools/train.py configs/demo/spatialflow_r18_demo.py)')
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.size
    if h % 32 or w % 32:
        parser.error(f'--size {h} {w}: both must be multiples of 32 (FPN padding)')
    names = ['spatialflow', 'panoptic_fpn']
    labels = {'spatialflow': 'SpatialFlow R50', 'panoptic_fpn': 'Panoptic FPN R50'}
    models = {n: build(n, args.device) for n in names}
    inputs, samples = make_input(h, w, args.device)

    for _ in range(args.warmup):
        for n in names:
            time_predict(models[n], inputs, samples, args.device)
    totals = {n: [] for n in names}
    breakdown = {n: [] for n in names}
    for _ in range(args.runs):  # alternate: drifts of a noisy machine hit both
        for n in names:
            totals[n].append(time_predict(models[n], inputs, samples, args.device))
            breakdown[n].append(time_stages(n, models[n], inputs, samples, args.device))

    device = (torch.cuda.get_device_name() if args.device.startswith('cuda')
              else f'CPU, {torch.get_num_threads()} threads')
    print(f'input 1x3x{h}x{w}, {device}, torch {torch.__version__}, median of '
          f'{args.runs} runs after {args.warmup} warm-up\n')
    print('| model | params | GFLOPs (total) | predict() per image | ratio |')
    print('|---|---|---|---|---|')
    med = {n: statistics.median(totals[n]) for n in names}
    counted = {n: flops(n, models[n], h, w) for n in names}
    for n in names:
        params = sum(p.numel() for p in models[n].parameters()) / 1e6
        print(f'| {labels[n]} | {params:.2f} M | {sum(counted[n].values()):.1f} | '
              f'{med[n] * 1000:.0f} ms | {med[n] / med["panoptic_fpn"]:.2f} |')
    for n in names:
        print(f'\n{labels[n]}: where the time goes (median ms per step) and FLOPs')
        print('| step | ms | share |')
        print('|---|---|---|')
        steps = breakdown[n][0].keys()
        step_med = {s: statistics.median(b[s] for b in breakdown[n]) for s in steps}
        total = sum(step_med.values())
        for s in steps:
            print(f'| {s} | {step_med[s] * 1000:.1f} | {step_med[s] / total:.0%} |')
        for part, g in counted[n].items():
            print(f'| FLOPs: {part} | {g:.1f} G | |')
    if args.checkpoint:
        bench_demo(args)


if __name__ == '__main__':
    main()
