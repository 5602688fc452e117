"""Peak memory of ONE training step, measured in a fresh process: CUDA allocator
statistics, or on CPU the RSS high-water mark reset just before the step; plus the
bytes autograd saves for backward (allocator-independent). Used by bench_pkd.py.

A benchmark runs its own script again with a worker flag; the worker builds the
model, calls :func:`measure_step` and :func:`report`; the parent reads the result
with :func:`run_worker` and formats it with :func:`memory_lines`.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
from typing import Callable, Dict, List, Sequence, Tuple

MEMORY_TAG = 'BENCH_MEMORY '  # prefix of the JSON line a memory worker prints


def measure_step(step: Callable[[], None], device: str) -> dict:
    """Peak memory of ``step()`` (one training step) in this process, in MiB.

    Returns ``rss_before_mib`` (allocated CUDA memory on CUDA), ``peak_mib``,
    ``increase_mib``, ``saved_mib`` (saved for backward) and
    ``step_set_high_water`` (False: the CPU peak may predate the step).
    """
    import torch
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with count_saved_tensors() as saved:
            step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return dict(rss_before_mib=before / 2**20, peak_mib=peak / 2**20,
                    increase_mib=(peak - before) / 2**20,
                    saved_mib=sum(saved.values()) / 2**20, step_set_high_water=True)
    # VmHWM (the RSS high-water mark) is reset to the current RSS by writing 5 to
    # clear_refs, so the step's own peak is seen even if building peaked higher.
    # (ru_maxrss cannot be reset, and Linux carries it over fork+exec from the parent.)
    release_free_heap()
    rss_before = proc_status_kib('VmRSS')
    reset = reset_high_water_mark()
    hwm_before = proc_status_kib('VmHWM')
    with count_saved_tensors() as saved:
        step()
    hwm_after = proc_status_kib('VmHWM')
    return dict(rss_before_mib=rss_before / 1024, peak_mib=hwm_after / 1024,
                increase_mib=(hwm_after - rss_before) / 1024,
                saved_mib=sum(saved.values()) / 2**20,
                step_set_high_water=reset or hwm_after > hwm_before)


@contextlib.contextmanager
def count_saved_tensors():
    """Bytes of the distinct storages autograd saves for backward (activations).

    Allocator-independent, unlike RSS: the same number on any machine/allocator.
    """
    import torch
    storages: Dict[Tuple[int, str], int] = {}

    def pack(tensor):
        if tensor.is_leaf and tensor.requires_grad:
            return tensor  # a parameter: memory it holds anyway
        storage = tensor.untyped_storage()
        storages[(storage.data_ptr(), str(tensor.device))] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield storages


def proc_status_kib(key: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in KiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{key} not in /proc/self/status')


def release_free_heap() -> None:
    """glibc ``malloc_trim(0)``: hand freed heap memory back to the OS, so that memory
    freed while building (e.g. the dropped teacher heads) is not silently reused by
    the step, which would hide part of the step's growth."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def report(result: dict) -> None:
    """Worker side: print ``result`` as the tagged JSON line the parent looks for."""
    print(MEMORY_TAG + json.dumps(result), flush=True)


def run_worker(cmd: List[str], cwd: str) -> dict:
    """Parent side: run the worker command ``cmd`` (a fresh interpreter: a clean
    high-water mark) and return the result it reported."""
    # A fixed mmap threshold (glibc's default value) turns off its dynamic raise, so
    # large tensors keep being mmap'ed and unmapped: RSS follows live tensors.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
    proc = subprocess.run([sys.executable, *cmd], cwd=cwd, capture_output=True,
                          text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(MEMORY_TAG):
            return json.loads(line[len(MEMORY_TAG):])
    raise SystemExit(f'memory worker {cmd} failed (rc {proc.returncode}):\n'
                     f'{(proc.stdout + proc.stderr)[-3000:]}')


def memory_lines(memory: Dict[str, dict], labels: Dict[str, str], on_cuda: bool,
                 notes: Sequence[str] = ()) -> List[str]:
    """Markdown: one row per measured variant (``labels``: its name), ``notes`` (e.g.
    ratios), then how it was measured."""
    unit = 'allocated CUDA memory' if on_cuda else 'RSS'
    lines = [f'| variant | {unit} before the step (MiB) | peak during the step (MiB) '
             '| increase (MiB) | saved for backward (MiB) |', '|---|---:|---:|---:|---:|']
    for v, m in memory.items():
        flag = '' if m['step_set_high_water'] else ' (*)'
        lines.append(f'| {labels[v]} | {m["rss_before_mib"]:.0f} | '
                     f'{m["peak_mib"]:.0f}{flag} | {m["increase_mib"]:.0f}{flag} | '
                     f'{m["saved_mib"]:.1f} |')
    return lines + ['', *notes, *_method(memory, on_cuda)]


def _method(memory: Dict[str, dict], on_cuda: bool) -> Tuple[str, ...]:
    """The measuring method, in words, under the memory table."""
    if on_cuda:
        return (
            'Method: each variant in a fresh subprocess builds its model and reads the '
            'batch, then runs ONE training step (the first: it also allocates gradients '
            'and the AdamW state); peak = `torch.cuda.max_memory_allocated()` after it '
            '(stats reset before), increase = peak minus `memory_allocated()` before. '
            'The caching allocator\'s reserve is not counted. Saved for backward: '
            'the distinct storages autograd saves during the step (parameters '
            'excluded).',)
    text = (
        'Method (CPU): each variant in a fresh subprocess builds its model and reads '
        'the batch, then runs ONE training step (the first: it also allocates '
        'gradients and the AdamW state). The RSS high-water mark (VmHWM) is reset to '
        'the current RSS just before the step (`echo 5 > /proc/self/clear_refs`), so '
        'peak = VmHWM after the step is the step\'s own peak, and increase = peak '
        'minus the RSS before the step (activations, gradients, optimizer state, '
        'allocator slack). The RSS before includes Python/torch/mmdet, the model and, '
        'for the distiller, the teacher\'s weights. The increase depends on '
        'the allocator (freed memory reused, thread caches), so the table adds the '
        'bytes of the distinct storages autograd saves for backward during the step '
        '(`saved_tensors_hooks`, parameters excluded), which does not. '
        '`ru_maxrss` is not used: it cannot be reset and Linux carries it over from '
        'the parent process.')
    if all(m['step_set_high_water'] for m in memory.values()):
        return (text,)
    return (text, '(*): the VmHWM reset was refused and building had peaked '
                  'higher than the step: an upper bound, not the step\'s peak.')
