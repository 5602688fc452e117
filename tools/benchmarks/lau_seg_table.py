"""Miniature version of the LaU paper's table on the embedded demo data.

bilinear vs LaU (offset-guided loss) vs LaU (regression loss): the demo segmentation
model (configs/demo/seg_*_demo.py), equal iterations, several seeds; val mIoU and
boundary mIoU (mIoU inside 3 px / 8 px bands around the ground-truth boundaries,
mmext.evaluation.BoundaryIoUMetric), mean and spread. Plus the parameters and MACs
that the LaU head adds, for the demo model and for the paper's EncNet-R50 setting
(+0.16M params / +0.60 GFLOPs in the paper).

    python tools/benchmarks/lau_seg_table.py                    # 3 seeds x 3 methods
    python tools/benchmarks/lau_seg_table.py --seeds 0 1 2 3 --iters 300
    python tools/benchmarks/lau_seg_table.py --cost-only        # params/MACs only
    python tools/benchmarks/lau_seg_table.py --seeds 0 --iters 2  # smoke (~2.5 min)

Each run is ``tools/train.py CONFIG --cfg-options randomness.seed=S
train_cfg.max_iters=N ...`` (validation once, at the end); mIoU, bIoU@3px and bIoU@8px
are read from the run's ``vis_data/scalars.json``. Prints Markdown tables.
"""
import argparse
import os.path as osp
import sys
import time
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from bench_report import emit, header, mean_std, run_device, table  # noqa: E402
from demo_runs import train_demo  # noqa: E402

METHODS = [
    ('bilinear', 'configs/demo/seg_bilinear_demo.py'),
    ('LaU, offset-guided (Eq. 3)', 'configs/demo/seg_lau_demo.py'),
    ('LaU, regression (Eq. 4)', 'configs/demo/seg_lau_reg_demo.py'),
]


METRICS = ('mIoU', 'bIoU@3px', 'bIoU@8px')


def run_one(config: str, seed: int, iters: int, work_dir: str) -> Dict[str, float]:
    """mIoU and boundary mIoU (3 px, 8 px bands) of one seeded run."""
    record = train_demo(config, seed, iters, work_dir)
    missing = [m for m in METRICS if m not in record]
    if missing:
        raise SystemExit(f'no {missing} in the validation record of {work_dir}')
    return {m: float(record[m]) for m in METRICS}


def lau_cost(in_channels: int, mid: int, k: int, groups: int, h: int, w: int,
             num_classes: int, shared: bool = False) -> dict:
    """Params and multiply-accumulates of the offset branch and the LaU sampling."""
    from mmext.seg import LaUOffsetBranch
    branch = LaUOffsetBranch(in_channels, mid, k, groups, shared=shared)
    params = sum(p.numel() for p in branch.parameters())
    # Every conv of the branch runs at the classifier's h x w and has no bias: one
    # multiply-accumulate per weight and position.
    conv_macs = params * h * w
    # Bilinear sampling: 4 taps per output value (what plain bilinear costs too).
    sample_macs = 4 * num_classes * (k * h) * (k * w)
    return dict(params=params, conv_macs=conv_macs, sample_macs=sample_macs)


def cost_table() -> str:
    from mmengine.config import Config
    rows = ['| model | offset branch | feature into the classifier | logits | LaU k '
            '| added params | added conv MACs | LaU sampling MACs |',
            '|---|---|---|---|---|---|---|---|']
    demo = Config.fromfile(osp.join(ROOT, 'configs/demo/seg_lau_demo.py'))
    head = demo.model.decode_head
    authors = 'authors\' (dy, dx branches)'
    settings = [
        ('demo (FCN, ResNetV1c-18/4), 160x160', authors, head.channels,
         head.lau_offset_branch.mid_channels, head.lau_factor, 20, 20, head.num_classes,
         False),
        ('EncNet-R50 OS8, Context 480x480', authors, 512, 128, 4, 60, 60, 59, False),
        ('EncNet-R50 OS8, 512x512', authors, 512, 128, 4, 64, 64, 59, False),
        ('EncNet-R50 OS8, ADE20K 480x480', authors, 512, 128, 4, 60, 60, 150, False),
        ('DeepLabV3+ R50 (decoder, OS4), VOC 512x512', authors, 512, 128, 4, 128, 128,
         21, False),
        ('EncNet-R50 OS8, Context 480x480', 'shared (option)', 512, 128, 4, 60, 60, 59,
         True),
    ]
    for name, kind, cin, mid, k, h, w, c, shared in settings:
        cost = lau_cost(cin, mid, k, 1, h, w, c, shared)
        rows.append(f'| {name} | {kind} | {cin} x {h}x{w} | {c} x {h}x{w} | {k} | '
                    f'{cost["params"] / 1e6:.3f} M | {cost["conv_macs"] / 1e9:.3f} G | '
                    f'{cost["sample_macs"] / 1e9:.3f} G |')
    rows.append('| paper, EncNet-R50 | | | | 4 | 0.16 M | 0.60 G (FLOPs) | |')
    return '\n'.join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--work-root', default='work_dirs/lau_seg_table')
    parser.add_argument('--cost-only', action='store_true')
    args = parser.parse_args()

    print(cost_table(), flush=True)
    if args.cost_only:
        return
    # the header now: it records the load average at the start
    lines = header('LaU vs bilinear upsampling on the demo data (the paper\'s table '
                   'in miniature)', run_device())
    start = time.time()
    results: Dict[str, List[Dict[str, float]]] = {}
    for name, config in METHODS:
        stem = osp.splitext(osp.basename(config))[0]
        for seed in args.seeds:
            t0 = time.time()
            res = run_one(config, seed, args.iters,
                          osp.join(args.work_root, f'{stem}_seed{seed}'))
            results.setdefault(name, []).append(res)
            print(f'[lau_seg_table] {name} seed {seed}: '
                  + ', '.join(f'{m} {v:.2f}' for m, v in res.items())
                  + f' ({time.time() - t0:.0f} s)', flush=True)
    lines += [f'{args.iters} iterations per run, seeds {args.seeds}, '
              f'{time.time() - start:.0f} s in total', '']
    columns = ['upsampler / loss']
    for m in METRICS:
        columns += [f'{m} per seed', f'{m} mean ± std']
    rows = []
    for name, runs in results.items():
        cells = [name]
        for m in METRICS:
            values = [r[m] for r in runs]
            cells += [', '.join(f'{v:.2f}' for v in values), mean_std(values, digits=2)]
        rows.append(cells)
    emit(lines + table(columns, rows))

if __name__ == '__main__':
    main()
