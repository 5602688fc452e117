"""Shared by the miniature-ablation benchmarks: train a demo config with one seed via
``tools/train.py`` (validation once, at the end) and read the metrics it logged."""
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
from _runner import ROOT, logged_scalars, run_tool, short_schedule  # noqa: E402


def train_demo(config: str, seed: int, iters: int, work_dir: str,
               extra_options: List[str] = ()) -> Dict[str, float]:
    """Train ``config`` for ``iters`` iterations with ``seed``; return the final
    validation record of ``vis_data/scalars.json`` (e.g. {'mIoU': ..} or
    {'coco_panoptic/PQ': ..}). The main LR schedule is stretched to ``iters``; the
    config's warm-up is kept unless ``iters`` does not exceed it (smoke runs: then
    it takes a quarter of ``iters``). ``extra_options`` come last and win."""
    warmup_end = _warmup_end(config)
    warmup = None if warmup_end is None or iters > warmup_end else max(1, iters // 4)
    options = [f'randomness.seed={seed}', *short_schedule(iters, warmup),
               *extra_options]
    os.makedirs(work_dir, exist_ok=True)
    run_tool(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
              *options], osp.join(work_dir, 'bench_stdout.log'))
    # validation records carry no loss / lr
    records = [r for r in logged_scalars(work_dir)
               if 'step' in r and 'loss' not in r and 'lr' not in r]
    if not records:
        raise SystemExit(f'no validation metrics in {work_dir}/*/vis_data/scalars.json')
    return records[-1]


def _warmup_end(config: str) -> Optional[int]:
    """Where the config's warm-up (``param_scheduler[0]``) ends; None without one."""
    from mmengine.config import Config
    schedulers = Config.fromfile(osp.join(ROOT, config)).get('param_scheduler')
    if not isinstance(schedulers, list) or len(schedulers) < 2:
        return None
    return schedulers[0].get('end')
