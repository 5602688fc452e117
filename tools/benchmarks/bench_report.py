"""Markdown output shared by the benchmark scripts: a header naming the command and
the machine, mean ± std cells, tables, and printing (optionally appending to a file)."""
from __future__ import annotations

import os
import os.path as osp
import platform
import shlex
import statistics
import sys
import time
from typing import Iterable, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str, device: str) -> List[str]:
    """Markdown header lines: the exact command, the machine, torch and its threads."""
    import torch
    command = shlex.join(['python', osp.relpath(osp.abspath(sys.argv[0]), ROOT),
                          *sys.argv[1:]])
    omp = os.environ.get('OMP_NUM_THREADS')
    dev = device if device == 'cpu' else f'{device} ({torch.cuda.get_device_name()})'
    try:
        load = ' '.join(f'{x:.1f}' for x in os.getloadavg())
    except OSError:
        load = 'n/a'
    return [
        f'### {title}', '',
        f'- command: `{command}`',
        f'- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, load average at '
        f'start {load}; device {dev}',
        f'- torch {torch.__version__}, {torch.get_num_threads()} torch threads '
        f'(OMP_NUM_THREADS={omp if omp is not None else "unset"}), '
        f'{time.strftime("%Y-%m-%d %H:%M")}', '',
    ]


def run_device() -> str:
    """The device tools/train.py trains on here: 'cuda' when available, else 'cpu'."""
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def mean_std(values: Sequence[float], digits: int = 3, signed: bool = False) -> str:
    """'mean ± sample std' (std '-' for a single value: it is undefined)."""
    std = f'{statistics.stdev(values):.{digits}f}' if len(values) > 1 else '-'
    return f'{statistics.mean(values):{"+" if signed else ""}.{digits}f} ± {std}'


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> List[str]:
    """A Markdown table: the header row, the separator, one line per row."""
    return ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns),
            *('| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows)]


def emit(lines: List[str], out: Optional[str] = None) -> None:
    """Print ``lines``; append them to ``out`` as well when given."""
    text = '\n'.join(lines) + '\n'
    print(text, flush=True)
    if out:
        with open(out, 'a') as f:
            f.write(text + '\n')
