"""Miniature SpatialFlow ablation on the embedded demo data: with vs without the
spatial information flows, equal iterations, several seeds; PQ / PQ-Th / PQ-St
(mmdet's CocoPanopticMetric on the demo val split), mean and spread.

    python tools/benchmarks/spatialflow_ablation.py                 # 3 seeds x 2, 500 it
    python tools/benchmarks/spatialflow_ablation.py --seeds 0 1 2 3 --iters 300

Each run is ``tools/train.py CONFIG --cfg-options randomness.seed=S
train_cfg.max_iters=N ...`` with validation once, at the end. Prints a Markdown table.
``--cfg-options`` are passed on to every run (e.g. a smoke test's tiny val subset).
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from bench_report import emit, header, mean_std, run_device, table  # noqa: E402
from demo_runs import train_demo  # noqa: E402

VARIANTS = [
    ('with flows', 'configs/demo/spatialflow_r18_demo.py'),
    ('without flows', 'configs/demo/spatialflow_r18_demo_noflows.py'),
]
KEYS = ['PQ', 'PQ_th', 'PQ_st', 'SQ', 'RQ']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=500)
    parser.add_argument('--work-root', default='work_dirs/spatialflow_ablation')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='extra config overrides for every run')
    args = parser.parse_args()

    # the header now: it records the load average at the start
    lines = header('SpatialFlow with vs without the information flows, demo data',
                   run_device())
    start = time.time()
    results = {name: [] for name, _ in VARIANTS}
    for seed in args.seeds:  # seed-major: an interrupted run still pairs the variants
        for name, config in VARIANTS:
            t0 = time.time()
            stem = osp.splitext(osp.basename(config))[0]
            record = train_demo(config, seed, args.iters,
                                osp.join(args.work_root, f'{stem}_seed{seed}'),
                                args.cfg_options)
            row = {k: float(record[f'coco_panoptic/{k}']) for k in KEYS}
            results[name].append(row)
            print(f'[spatialflow_ablation] {name} seed {seed}: '
                  + ', '.join(f'{k} {v:.2f}' for k, v in row.items())
                  + f' ({time.time() - t0:.0f} s)', flush=True)
    lines += [f'{args.iters} iterations per run, seeds {args.seeds}, '
              f'{time.time() - start:.0f} s in total', '']
    columns = ['variant', 'PQ per seed', *(f'{k} mean ± std' for k in KEYS)]
    emit(lines + table(columns, [
        [name, ', '.join(f'{r["PQ"]:.2f}' for r in rows),
         *(mean_std([r[k] for r in rows], digits=2) for k in KEYS)]
        for name, rows in results.items()]))


if __name__ == '__main__':
    main()
