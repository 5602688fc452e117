"""Benchmarks of PKD feature distillation (``FeatureDistiller``) on the demo configs.

Not a test. Two parts, each printing Markdown tables (with the command and the
machine in the header) ready to paste into docs/benchmarks.md:

``--part speed``: training-step time and peak memory of the distiller against the
plain student, on ONE fixed batch of the demo train dataloader, in one process:
  (a) plain student training step (``train_step``: data_preprocessor + loss +
      backward + AdamW step, the config's optim_wrapper with its grad clipping),
  (b) teacher backbone+neck forward under no_grad on the same (preprocessed) batch,
  (c) distiller training step;
  floor = (a) + (b), target (c) <= 1.10 x floor. Variants are timed round-robin
  (the order rotates every round) after warm-up, median of ``--repeats`` rounds.
  Peak memory: each variant in its own subprocess (see the printed method).
  Timing does not depend on trained weights: without ``--teacher-ckpt`` a randomly
  initialised teacher is saved to a temporary file and used.

``--part table``: the miniature paper table. For each seed, ``tools/train.py`` on
pkd_retinanet_r18_plain.py and pkd_retinanet_r18_distill.py (same schedule, same
seed), then ``tools/test.py`` of each final checkpoint with the plain student config
(the distilled checkpoint is student-only, docs/pkd.md); coco/bbox_mAP is read from
the test run's ``<work_dir>/<timestamp>/<timestamp>.json``. Needs a trained teacher.

    python tools/benchmarks/bench_pkd.py --teacher-ckpt \\
        work_dirs/demo/pkd_teacher_faster_rcnn_r18_demo/iter_300.pth --out docs/benchmarks.md
    python tools/benchmarks/bench_pkd.py --part speed --repeats 10
    python tools/benchmarks/bench_pkd.py --part table --seeds 0 1 2 --teacher-ckpt T.pth
    # smoke (results meaningless):
    python tools/benchmarks/bench_pkd.py --save-random-teacher /tmp/t.pth
    python tools/benchmarks/bench_pkd.py --part table --seeds 0 --iters 2 \\
        --test-images 8 --teacher-ckpt /tmp/t.pth

Threads: torch follows ``OMP_NUM_THREADS`` when it is set (also in the subprocesses,
which inherit the environment); ``--threads`` overrides it in this process.
Work dirs of the table (``--work-root``, default work_dirs/bench_pkd/) are deleted
and rewritten run by run.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import glob
import json
import os
import os.path as osp
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a checkout

PLAIN = 'configs/demo/pkd_retinanet_r18_plain.py'
DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'
TEACHER = 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py'
METRIC = 'coco/bbox_mAP'
MEMORY_TAG = 'BENCH_PKD_MEMORY '  # prefix of the JSON line a memory worker prints
VARIANTS = ('plain', 'teacher', 'distiller')
LABELS = {
    'plain': '(a) plain student training step',
    'teacher': '(b) teacher backbone+neck forward, no_grad',
    'distiller': '(c) distiller training step',
}


# --------------------------------------------------------------------- helpers
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
    """Markdown header lines: the exact command and the machine."""
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


def emit(lines: List[str], out: Optional[str]) -> None:
    """Print ``lines``; append them to ``out`` as well when given."""
    text = '\n'.join(lines) + '\n'
    print(text, flush=True)
    if out:
        with open(out, 'a') as f:
            f.write(text + '\n')


def setup_registry() -> None:
    """Register mmext and mmdet modules (mmdet as the default scope)."""
    import mmext  # noqa: F401  (registers FeatureDistiller, PKDLoss, DemoCocoDataset)
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger
    register_all_modules(init_default_scope=True)
    # The newest MMLogger is the 'current' one: this keeps init_weights' per-parameter
    # INFO lines out of the benchmark output.
    MMLogger.get_instance('bench_pkd', log_level='WARNING')


def save_random_teacher(path: str) -> str:
    """Write an untrained checkpoint of the demo teacher architecture to ``path``."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    setup_registry()
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(osp.join(ROOT, TEACHER)).model)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {'random_init': True}}, path)
    return path


# ----------------------------------------------------------------- speed part
def fixed_batch(cfg) -> dict:
    """One batch of the config's train dataloader (no worker processes)."""
    from mmengine.runner import Runner
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    return next(iter(loader))


def build_variant(name: str, teacher_ckpt: str, device: str):
    """(model, optim_wrapper) of 'plain' or 'distiller' built from the demo configs."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(ROOT, PLAIN if name == 'plain' else DISTILL))
    if name != 'plain':
        cfg.model.teacher.checkpoint = teacher_ckpt
    torch.manual_seed(0)  # the same student initialisation in both models
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device).train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper), cfg


def sync(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_round_robin(fns: Dict[str, Callable[[], None]], warmup: int, repeats: int,
                     device: str) -> Dict[str, List[float]]:
    """Milliseconds of each fn per round; the order rotates every round (drift)."""
    names = list(fns)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            t0 = time.perf_counter()
            fns[name]()
            sync(device)
            if r >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def measure_memory_worker(variant: str, teacher_ckpt: str, device: str) -> dict:
    """Peak memory of ONE training step of ``variant`` in this (fresh) process."""
    import torch
    setup_registry()
    model, optim, cfg = build_variant(variant, teacher_ckpt, device)
    batch = fixed_batch(cfg)
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with count_saved_tensors() as saved:
            model.train_step(batch, optim)
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
        model.train_step(batch, optim)
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


def run_memory_subprocess(variant: str, teacher_ckpt: str, device: str) -> dict:
    """Run :func:`measure_memory_worker` in a fresh interpreter (clean high-water mark)."""
    cmd = [sys.executable, osp.abspath(__file__), '--memory-worker', variant,
           '--teacher-ckpt', teacher_ckpt, '--device', device]
    # A fixed mmap threshold (glibc's default value) turns off its dynamic raise, so
    # large tensors keep being mmap'ed and unmapped: RSS follows live tensors.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(MEMORY_TAG):
            return json.loads(line[len(MEMORY_TAG):])
    raise SystemExit(f'memory worker {variant} failed (rc {proc.returncode}):\n'
                     f'{(proc.stdout + proc.stderr)[-3000:]}')


def fmt_ms(values: List[float]) -> Tuple[str, str]:
    return (f'{statistics.median(values):.1f}',
            f'{min(values):.1f}..{max(values):.1f}')


def speed_part(args: argparse.Namespace, teacher_ckpt: str, random_teacher: bool) -> None:
    """Time (a), (b), (c) interleaved; measure peak memory in subprocesses; print."""
    import torch
    lines = header('PKD: distiller training step vs plain student', args.device)
    setup_registry()
    plain, optim_plain, cfg = build_variant('plain', teacher_ckpt, args.device)
    distiller, optim_distill, _ = build_variant('distiller', teacher_ckpt, args.device)
    batch = fixed_batch(cfg)
    with torch.no_grad():  # (b) gets what the distiller's teacher gets: preprocessed input
        inputs = distiller.data_preprocessor(batch, training=True)['inputs']

    def teacher_forward() -> None:
        with torch.no_grad():
            distiller.teacher_features(inputs)

    times = time_round_robin({
        'plain': lambda: plain.train_step(batch, optim_plain),
        'teacher': teacher_forward,
        'distiller': lambda: distiller.train_step(batch, optim_distill),
    }, args.warmup, args.repeats, args.device)
    floor = [a + b for a, b in zip(times['plain'], times['teacher'])]
    med = {k: statistics.median(v) for k, v in times.items()}
    med_floor = statistics.median(floor)
    per_round = [c / f for c, f in zip(times['distiller'], floor)]
    ratio_floor = med['distiller'] / med_floor

    shape = tuple(inputs.shape)
    n_boxes = sum(len(s.gt_instances) for s in batch['data_samples'])
    lines += [
        f'One fixed batch of the demo train dataloader: {shape[0]} images, padded '
        f'input {shape[2]}x{shape[3]}, {n_boxes} gt boxes. Student RetinaNet R18 '
        '(64-ch FPN P3-P7), teacher Faster R-CNN R18 backbone+neck (128-ch FPN P2-P6), '
        f'{len(distiller.level_pairs)} PKD levels, {len(distiller.adapters)} adapters. '
        f'{args.warmup} warm-up rounds, then median of {args.repeats} rounds; the '
        'three variants run round-robin in one process, order rotating per round.',
        '',
        ('Teacher weights: random initialisation (saved to a temporary checkpoint); '
         'step time does not depend on trained weights.') if random_teacher
        else f'Teacher weights: `{args.teacher_ckpt}`.', '',
        '| variant | median ms | min..max ms |', '|---|---:|---:|',
    ]
    for name in VARIANTS:
        m, spread = fmt_ms(times[name])
        lines.append(f'| {LABELS[name]} | {m} | {spread} |')
        if name == 'teacher':
            m, spread = fmt_ms(floor)
            lines.append(f'| floor = (a) + (b), per round | {m} | {spread} |')
    verdict = 'within' if ratio_floor <= 1.10 else 'NOT within'
    lines += [
        '',
        f'- distiller / plain: **{med["distiller"] / med["plain"]:.3f}** (medians)',
        f'- distiller / floor: **{ratio_floor:.3f}** (medians; median of the per-round '
        f'ratios {statistics.median(per_round):.3f}) -> {verdict} the 1.10 target', '',
    ]
    del plain, distiller, optim_plain, optim_distill  # before the memory subprocesses

    if args.skip_memory:
        emit(lines, args.out)
        return
    memory = {v: run_memory_subprocess(v, teacher_ckpt, args.device)
              for v in ('plain', 'distiller')}
    on_cuda = args.device.startswith('cuda')
    unit = 'allocated CUDA memory' if on_cuda else 'RSS'
    lines += [f'| variant | {unit} before the step (MiB) | peak during the step (MiB) '
              '| increase (MiB) | saved for backward (MiB) |', '|---|---:|---:|---:|---:|']
    for v in ('plain', 'distiller'):
        m = memory[v]
        flag = '' if m['step_set_high_water'] else ' (*)'
        lines.append(f'| {LABELS[v][4:]} | {m["rss_before_mib"]:.0f} | '
                     f'{m["peak_mib"]:.0f}{flag} | {m["increase_mib"]:.0f}{flag} | '
                     f'{m["saved_mib"]:.1f} |')
    p, d = memory['plain'], memory['distiller']
    lines += [
        '',
        f'- distiller / plain: **{d["peak_mib"] / p["peak_mib"]:.2f}** for the peak, '
        f'{d["increase_mib"] / p["increase_mib"]:.2f} for the increase, '
        f'{d["saved_mib"] / p["saved_mib"]:.2f} for the tensors saved for backward', '',
    ]
    if on_cuda:
        lines.append(
            'Method: each variant in a fresh subprocess builds its model and reads the '
            'batch, then runs ONE training step (the first: it also allocates gradients '
            'and the AdamW state); peak = `torch.cuda.max_memory_allocated()` after it '
            '(stats reset before), increase = peak minus `memory_allocated()` before. '
            'The caching allocator\'s reserve is not counted. Saved for backward: '
            'the distinct storages autograd saves during the step (parameters '
            'excluded).')
    else:
        lines.append(
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
        if not all(m['step_set_high_water'] for m in memory.values()):
            lines.append('(*): the VmHWM reset was refused and building had peaked '
                         'higher than the step: an upper bound, not the step\'s peak.')
    emit(lines, args.out)


# ----------------------------------------------------------------- table part
def schedule_options(iters: Optional[int]) -> List[str]:
    """--cfg-options that shorten the schedule to ``iters`` (None: the config's)."""
    if iters is None:
        return []
    warm = max(1, min(50, iters // 4))  # the configs' 50-iter warmup, scaled down
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={warm}', f'param_scheduler.1.begin={warm}',
            f'param_scheduler.1.end={max(iters, warm + 1)}']  # mmengine needs end > begin


def run_tool(args: List[str], log_path: str) -> None:
    """Run a tools/ script from the repo root; its output goes to ``log_path``."""
    with open(log_path, 'w') as log:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(log_path) as log:
            tail = ''.join(log.readlines()[-30:])
        raise SystemExit(f'failed: {shlex.join(args)}\n{tail}\n(full log: {log_path})')


def train_and_test(config: str, seed: int, work_dir: str, options: List[str],
                   test_options: List[str]) -> float:
    """Train ``config`` with ``seed``, test its last checkpoint, return coco/bbox_mAP."""
    shutil.rmtree(work_dir, ignore_errors=True)  # a clean dir: one test json to find
    os.makedirs(work_dir)
    run_tool(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
              f'randomness.seed={seed}', *options], osp.join(work_dir, 'train_stdout.log'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    # The training configs validate nothing (val_cfg=None); the plain student config
    # tests both checkpoints the same way (a distilled one is student + adapters).
    test_args = ['tools/test.py', PLAIN, checkpoint, '--work-dir', work_dir]
    if test_options:
        test_args += ['--cfg-options', *test_options]
    run_tool(test_args, osp.join(work_dir, 'test_stdout.log'))
    # tools/test.py writes <work_dir>/<timestamp>/<timestamp>.json; training writes
    # its json under <timestamp>/vis_data/, so this glob only sees the test's.
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not found:
        raise SystemExit(f'no test metrics json under {work_dir}')
    with open(found[-1]) as f:
        metrics = json.load(f)
    if METRIC not in metrics:
        with open(osp.join(work_dir, 'test_stdout.log')) as f:
            no_detections = 'results of the whole dataset is empty' in f.read()
        if no_detections:  # mmdet's CocoMetric reports nothing then; the mAP is 0
            print(f'[bench_pkd] {work_dir}: no detections at all, {METRIC} = 0',
                  flush=True)
            return 0.0
        raise SystemExit(f'{METRIC} missing in {found[-1]}: {sorted(metrics)}')
    return float(metrics[METRIC])


def mean_std(values: List[float]) -> str:
    """'mean ± sample std' (std '-' for a single value)."""
    std = f'{statistics.stdev(values):.3f}' if len(values) > 1 else '-'
    return f'{statistics.mean(values):.3f} ± {std}'


def table_part(args: argparse.Namespace) -> None:
    """Plain vs PKD student mAP over seeds, via tools/train.py and tools/test.py."""
    teacher_ckpt = osp.abspath(args.teacher_ckpt)
    lines = header('PKD: plain vs distilled RetinaNet R18 on the demo data', args.device)
    iters = args.iters if args.iters is not None else 'the configs\' 200'
    test_options = []
    if args.test_images:
        test_options = [f'test_dataloader.dataset.indices={args.test_images}']
    runs = [('RetinaNet R18 plain', PLAIN, []),
            ('RetinaNet R18 + PKD', DISTILL, [f'model.teacher.checkpoint={teacher_ckpt}'])]
    values: Dict[str, List[float]] = {name: [] for name, _, _ in runs}
    start = time.time()
    for seed in args.seeds:
        for name, config, extra in runs:  # interleaved: load drift hits both alike
            stem = osp.splitext(osp.basename(config))[0]
            work_dir = osp.join(args.work_root, f'{stem}_seed{seed}')
            t0 = time.time()
            value = train_and_test(config, seed, work_dir,
                                   extra + schedule_options(args.iters), test_options)
            values[name].append(value)
            print(f'[bench_pkd] {name}, seed {seed}: {METRIC} {value:.3f} '
                  f'({time.time() - t0:.0f} s, {work_dir})', flush=True)
    diffs = [d - p for p, d in zip(*values.values())]
    seeds = ', '.join(map(str, args.seeds))
    lines += [
        f'{iters} iterations per run, batch 8, seeds {seeds}; teacher `{args.teacher_ckpt}`'
        f'; each final checkpoint tested with `{PLAIN}` on the demo val set'
        + (f' (first {args.test_images} images only)' if args.test_images else '')
        + f'; {time.time() - start:.0f} s in total. std: sample std over seeds; a run '
        'with no detections at all counts as 0 (mmdet reports no mAP then).', '',
        f'| student | {METRIC} per seed ({seeds}) | mean ± std |', '|---|---|---|',
    ]
    for name, vals in values.items():
        lines.append(f'| {name} | {", ".join(f"{v:.3f}" for v in vals)} | '
                     f'{mean_std(vals)} |')
    lines += [f'| PKD − plain (paired by seed) | {", ".join(f"{d:+.3f}" for d in diffs)} '
              f'| {mean_std(diffs)} |', '']
    emit(lines, args.out)


# ----------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--part', choices=['speed', 'table', 'both'], default='both')
    parser.add_argument('--teacher-ckpt', help='teacher checkpoint (required by the '
                        'table part; the speed part uses a random teacher without it)')
    parser.add_argument('--out', help='also append the Markdown tables to this file')
    parser.add_argument('--device', default=None, help='speed part: cpu or cuda '
                        '(default: cuda when available)')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch.set_num_threads in this process (0: leave as is)')
    parser.add_argument('--repeats', type=int, default=10, help='timed rounds (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--skip-memory', action='store_true',
                        help='speed part: no peak-memory subprocesses')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=None,
                        help='table part: override max_iters (and the LR schedule)')
    parser.add_argument('--test-images', type=int, default=None,
                        help='table part: test on the first N val images (smoke runs)')
    parser.add_argument('--work-root', default='work_dirs/bench_pkd')
    parser.add_argument('--save-random-teacher', metavar='PATH',
                        help='write an untrained demo-teacher checkpoint and exit')
    parser.add_argument('--memory-worker', choices=['plain', 'distiller'],
                        help=argparse.SUPPRESS)  # internal: one memory measurement
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    if args.iters is not None and args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.part in ('table', 'both') and not (args.save_random_teacher
                                               or args.memory_worker):
        if not args.teacher_ckpt:
            parser.error('the table part needs a trained teacher: --teacher-ckpt PATH '
                         f'(train one with: python tools/train.py {TEACHER} --work-dir '
                         'work_dirs/demo/pkd_teacher_faster_rcnn_r18_demo), or run '
                         '--part speed alone')
    if args.teacher_ckpt and not osp.isfile(args.teacher_ckpt):
        parser.error(f'teacher checkpoint {args.teacher_ckpt} does not exist')
    return args


def main() -> None:
    args = parse_args()
    os.chdir(ROOT)  # the configs' data_root and _base_ paths are relative to the repo
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.save_random_teacher:
        print(f'wrote {save_random_teacher(args.save_random_teacher)} (untrained)')
        return
    if args.memory_worker:
        result = measure_memory_worker(args.memory_worker, args.teacher_ckpt, args.device)
        print(MEMORY_TAG + json.dumps(result), flush=True)
        return
    if args.part in ('speed', 'both'):
        tmp_dir = None
        teacher_ckpt = args.teacher_ckpt
        if not teacher_ckpt:
            tmp_dir = tempfile.mkdtemp(prefix='bench_pkd_')
            teacher_ckpt = save_random_teacher(osp.join(tmp_dir, 'random_teacher.pth'))
        try:
            speed_part(args, osp.abspath(teacher_ckpt), random_teacher=tmp_dir is not None)
        finally:
            if tmp_dir:
                shutil.rmtree(tmp_dir, ignore_errors=True)
    if args.part in ('table', 'both'):
        table_part(args)


if __name__ == '__main__':
    main()
