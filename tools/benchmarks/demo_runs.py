"""Shared by the miniature-ablation benchmarks: train a demo config with one seed via
``tools/train.py`` (validation once, at the end) and read the metrics it logged."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train_demo(config: str, seed: int, iters: int, work_dir: str,
               extra_options: List[str] = ()) -> Dict[str, float]:
    """Train ``config`` for ``iters`` iterations with ``seed``; return the final
    validation record of ``vis_data/scalars.json`` (e.g. {'mIoU': ..} or
    {'coco_panoptic/PQ': ..}). The cosine schedule is stretched to ``iters``."""
    options = [f'randomness.seed={seed}', f'train_cfg.max_iters={iters}',
               f'train_cfg.val_interval={iters}',
               f'default_hooks.checkpoint.interval={iters}',
               f'param_scheduler.1.end={iters}', *extra_options]
    log_path = osp.join(work_dir, 'bench_stdout.log')
    os.makedirs(work_dir, exist_ok=True)
    with open(log_path, 'w') as log:
        proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir',
                               work_dir, '--cfg-options', *options], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f'run failed ({config}, seed {seed}); see {log_path}')
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                     key=osp.getmtime)[-1]
    record = None
    with open(scalars) as f:
        for line in f:
            entry = json.loads(line)
            if 'step' in entry and 'loss' not in entry and 'lr' not in entry:
                record = entry  # validation records carry no loss / lr
    if record is None:
        raise SystemExit(f'no validation metrics in {scalars}')
    return record
