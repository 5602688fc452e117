"""Shared by ``tools/run_demo.py`` and ``tools/benchmarks/*``: run a tools/ script as a
subprocess (full log to a file, live training progress on the console, the log's
tail when it fails), the short-schedule ``--cfg-options``, and where mmengine left
a run's checkpoint, test metrics and logged scalars.

Not a user-facing tool (hence the underscore): scripts in ``tools/`` import it as
``_runner`` (their folder is ``sys.path[0]``), scripts in ``tools/benchmarks/`` put
``tools/`` on ``sys.path`` first.
"""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from typing import List, Optional, Sequence, TextIO, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# mmengine's LoggerHook lines: 'Iter(train) [ 50/300]  lr: ..  eta: 0:01:02  ...',
# 'Epoch(val) [1][ 5/13] ...', 'Iter(test) [13/13]    mIoU: 54.5000 ...'
_PROGRESS = re.compile(
    r'\b(?P<loop>Iter|Epoch)\((?P<phase>train|val|test)\)\s*'
    r'(?P<where>(?:\[\s*\d+\])?\[\s*\d+/\s*\d+\])(?P<rest>.*)')
_FIELD = re.compile(r'([\w@/.\-]+): (\S+)')
_TIMING = ('time', 'data_time', 'memory', 'lr', 'grad_norm')  # not shown for val/test


def progress_line(line: str) -> Optional[str]:
    """The console form of an mmengine progress line, or None for any other line.

    Training lines keep iteration, ETA, seconds per iteration and the total loss;
    validation/test lines keep the position, ETA, and the metrics of the final one.
    """
    m = _PROGRESS.search(line)
    if m is None:
        return None
    fields = dict(_FIELD.findall(m['rest']))
    where = re.sub(r'\s+', '', m['where'])
    head = f'{m["loop"]}({m["phase"]}) {where}'
    if m['phase'] == 'train':
        keep = [('eta', 'eta'), ('time', 's/it'), ('loss', 'loss')]
        return head + ''.join(f'  {label} {fields[k]}' for k, label in keep
                              if k in fields)
    shown = {k: v for k, v in fields.items() if k not in _TIMING}
    return head + ''.join(f'  {k} {v}' for k, v in shown.items())


def run_tool(args: Sequence[str], log_path: str, echo: bool = True,
             tail_lines: int = 30, out: TextIO = None) -> None:
    """Run ``python <args>`` from the repo root; all its output goes to ``log_path``.

    With ``echo``, the progress lines (:func:`progress_line`) are printed to ``out``
    (default stdout) as they come. A failure raises SystemExit with the command, the
    last ``tail_lines`` lines of the log and the log's path.
    """
    out = out or sys.stdout
    cmd = [sys.executable, *args]
    # Unbuffered: the child's lines arrive while it runs, not when it exits.
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors='replace',
                                env=env)
        for line in proc.stdout:
            log.write(line)
            shown = progress_line(line) if echo else None
            if shown:
                print(f'    {shown}', file=out, flush=True)
        rc = proc.wait()
    if rc != 0:
        with open(log_path) as log:
            tail = ''.join(log.readlines()[-tail_lines:])
        raise SystemExit(f'failed (exit code {rc}): {shlex.join(args)}\n{tail}\n'
                         f'(full log: {log_path})')


def short_schedule(iters: int, warmup: Optional[int] = None) -> List[str]:
    """``--cfg-options`` that train ``iters`` iterations, validate and save once, at
    the end, with the main LR schedule (``param_scheduler[1]``) ending there.

    ``warmup``: also move the warm-up (``param_scheduler[0]``, ending where [1]
    begins) to ``warmup`` iterations; None keeps the config's warm-up.
    """
    options = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
               f'default_hooks.checkpoint.interval={iters}']
    if warmup is None:
        return options + [f'param_scheduler.1.end={iters}']
    return options + [f'param_scheduler.0.end={warmup}',
                      f'param_scheduler.1.begin={warmup}',
                      # mmengine needs end > begin
                      f'param_scheduler.1.end={max(iters, warmup + 1)}']


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint path mmengine's CheckpointHook recorded last in ``work_dir``."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def read_test_metrics(work_dir: str) -> Tuple[str, dict]:
    """(path, metrics) of the newest ``<work_dir>/<timestamp>/<timestamp>.json``.

    tools/test.py writes that file; training writes its json under
    ``<timestamp>/vis_data/``, so a test's is the only match.
    """
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not found:
        raise SystemExit(f'no test metrics json under {work_dir}')
    with open(found[-1]) as f:
        return found[-1], json.load(f)


def logged_scalars(work_dir: str) -> List[dict]:
    """The records of the newest ``<work_dir>/<timestamp>/vis_data/scalars.json``,
    one dict per logged step ([] when there is none)."""
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                   key=osp.getmtime)
    if not found:
        return []
    with open(found[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]
