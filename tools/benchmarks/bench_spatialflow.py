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
        from mmext.panoptic import spatialflow_fusion
        cfg = model.test_cfg

        def fuse(s):
            det, logits = s['dets'][0], s['stuff'][0]
            spatialflow_fusion(det.masks.bool(), det.scores, det.labels, det.bboxes,
                               logits.argmax(0), model.num_things_classes,
                               model.num_stuff_classes, **cfg['panoptic'])
        return [
            ('backbone + FPN', lambda s: s.update(x=model.extract_feat(inputs))),
            ('four towers (all levels)', lambda s: s.update(o=model.bbox_head(s['x']))),
            ('box post-processing (NMS)', lambda s: s.update(
                dets=model.bbox_head.predict_by_feat(*s['o'][:2], batch_img_metas=metas))),
            ('mask branch (100 RoIs) + paste', lambda s: s.update(
                dets=model.mask_branch.predict(s['o'][3], metas, s['dets']))),
            ('stuff head + resize', lambda s: s.update(
                stuff=model.stuff_head.predict(s['o'][2], metas, True))),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, nargs=2, default=[800, 1216],
                        metavar=('H', 'W'), help='input size (multiple of 32)')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
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


if __name__ == '__main__':
    main()
