"""Benchmarks of PKD feature distillation (``FeatureDistiller``) on the demo configs.

Not a test. Three parts, each printing Markdown tables (with the command and the
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

``--part teacher``: trains the demo teacher until its val mAP stops rising
(``configs/demo/pkd_teacher_faster_rcnn_r18_demo_converged.py``: validation every 100
iterations, best checkpoint kept, early stop) and prints its mAP curve.

``--part probe``: the initial PKD and MSE terms per level (weight 1) of the untrained
student under that teacher, to set the MSE variant's weight (``--mse-weight``).

``--part table``: the students, at equal iterations (the configs' 200), for each
seed: plain; PKD with the authors' pairing (student P3..P6 -> teacher P2..P5, loss
weight 6); PKD with stride pairing; plain MSE feature imitation at the authors'
levels; PKD at a small loss weight. ``tools/train.py`` then ``tools/test.py`` of the
final checkpoint with the plain student config (a distilled checkpoint is
student-only, docs/pkd.md); coco/bbox_mAP from the test run's json. Prints mean, std
and paired differences by seed, and the loss composition from the training logs.
The teacher is ``--teacher-ckpt`` or, without it, the one ``--part teacher`` left.
Every run is resumable: a finished (variant, seed) leaves ``result.json`` in its
work dir and is reused (``--force`` reruns).

    python tools/benchmarks/bench_pkd.py --part effect --out /tmp/pkd.md  # all three
    python tools/benchmarks/bench_pkd.py --part teacher --out /tmp/pkd_teacher.md
    python tools/benchmarks/bench_pkd.py --part table --seeds 0 1 2 --out /tmp/pkd.md
    python tools/benchmarks/bench_pkd.py --part speed --repeats 10
    # smoke (results meaningless):
    python tools/benchmarks/bench_pkd.py --save-random-teacher /tmp/t.pth
    python tools/benchmarks/bench_pkd.py --part table --seeds 0 --iters 2 \\
        --test-images 8 --teacher-ckpt /tmp/t.pth --work-root /tmp/bench_pkd_smoke

Threads: torch follows ``OMP_NUM_THREADS`` when it is set (also in the subprocesses,
which inherit the environment); ``--threads`` overrides it in this process.
Work dirs (``--work-root``, default work_dirs/bench_pkd/): ``teacher/`` and
``<variant>_seed<seed>/``; an unfinished run's dir is deleted and rerun.
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
TEACHER_CONVERGED = 'configs/demo/pkd_teacher_faster_rcnn_r18_demo_converged.py'
DISTILL_PREFIXES = ('loss_pkd', 'loss_mse')  # the distillation terms in the logs
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


# --------------------------------------------------------------- teacher part
def scalars_of(work_dir: str) -> List[dict]:
    """The records of mmengine's ``<work_dir>/<timestamp>/vis_data/scalars.json``
    (the newest run), one dict per logged step."""
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                   key=osp.getmtime)
    if not found:
        return []
    with open(found[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def val_curve(records: List[dict]) -> List[Tuple[int, float]]:
    """[(iteration, METRIC)] of each validation in mmengine's scalars.json records.

    mmengine writes validation records with ``step`` 0 in iteration-based loops, so
    each one takes the iteration of the training record logged just before it.
    """
    curve, last_iter = [], 0
    for record in records:
        if 'loss' in record:
            last_iter = int(record.get('iter', record.get('step', last_iter)))
        elif METRIC in record:
            curve.append((last_iter, float(record[METRIC])))
    return curve


def teacher_part(args: argparse.Namespace) -> str:
    """Train the demo teacher until its val mAP stops rising; print its curve.

    Resumable: a finished run leaves ``<work_root>/teacher/result.json`` and is not
    rerun (``--force`` reruns it). Returns the best checkpoint's path.
    """
    work_dir = osp.join(args.work_root, 'teacher')
    result_path = osp.join(work_dir, 'result.json')
    if osp.isfile(result_path) and not args.force:
        with open(result_path) as f:
            result = json.load(f)
        print(f'[bench_pkd] teacher: reusing {result_path}', flush=True)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
        os.makedirs(work_dir)
        options = ['randomness.seed=0']
        if args.teacher_iters:
            options += [f'train_cfg.max_iters={args.teacher_iters}',
                        f'param_scheduler.1.end={args.teacher_iters}']
        start = time.time()
        run_tool(['tools/train.py', TEACHER_CONVERGED, '--work-dir', work_dir,
                  '--cfg-options', *options], osp.join(work_dir, 'train_stdout.log'))
        curve = val_curve(scalars_of(work_dir))
        best = sorted(glob.glob(osp.join(work_dir, 'best_coco_bbox_mAP_iter_*.pth')))
        if not curve or not best:
            raise SystemExit(f'teacher run left no validation curve or best checkpoint '
                             f'in {work_dir}')
        trained = max(int(r.get('iter', r.get('step', 0))) for r in scalars_of(work_dir)
                      if 'loss' in r)
        result = dict(curve=curve, checkpoint=best[-1], trained_iters=trained,
                      seconds=time.time() - start,
                      command=shlex.join(['python', 'tools/train.py', TEACHER_CONVERGED,
                                          '--cfg-options', *options]))
        with open(result_path, 'w') as f:
            json.dump(result, f, indent=1)
    if scalars_of(work_dir):  # recomputed: result.json of older versions
        result['curve'] = val_curve(scalars_of(work_dir))
    best_iter, best_map = max(result['curve'], key=lambda c: c[1])
    lines = header('PKD demo teacher trained until its val mAP stops rising',
                   args.device)
    lines += [
        f'`{TEACHER_CONVERGED}`: Faster R-CNN R18 from scratch, validated every 100 '
        'iterations on the 100 demo val images, early stop after 3 validations without '
        f'a +0.002 rise; trained {result["trained_iters"]} iterations in '
        f'{result["seconds"]:.0f} s (`{result["command"]}`). Best: **{best_map:.3f}** '
        f'at iteration {best_iter} (`{result["checkpoint"]}`, the teacher of the '
        'table below). ' + (
            'The mAP was still rising at the last validation: the iteration cap (the '
            'CPU budget), not a plateau, ended training.'
            if best_iter == result['curve'][-1][0] else
            'The mAP stopped rising before the end.'), '',
        '| iteration | ' + ' | '.join(str(i) for i, _ in result['curve']) + ' |',
        '|---|' + '---:|' * len(result['curve']),
        f'| {METRIC} | ' + ' | '.join(f'{m:.3f}' for _, m in result['curve']) + ' |', '']
    emit(lines, args.out)
    return result['checkpoint']


# ------------------------------------------------------------------ probe part
def probe_part(args: argparse.Namespace, teacher_ckpt: str) -> float:
    """Distillation terms of the untrained student (seed 0) on one train batch:
    PKD and MSE at weight 1, per level, so that the MSE variant's weight can be set
    to give the same initial magnitude as PKD (MSE has no natural scale)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    setup_registry()
    cfg = Config.fromfile(osp.join(ROOT, DISTILL))
    cfg.model.teacher.checkpoint = osp.abspath(teacher_ckpt)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = fixed_batch(cfg)
    pkd = MODELS.build(dict(type='PKDLoss', loss_weight=1.0))
    mse = MODELS.build(dict(type='FeatureMSELoss', loss_weight=1.0))
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=True)
        feats_s = model.student.extract_feat(data['inputs'])
        feats_t = model.teacher_features(data['inputs'])
    rows, totals = [], {'pkd': 0.0, 'mse': 0.0}
    for name, i_s, i_t in model.level_pairs:
        with torch.no_grad():
            feat_s = model.adapters[name](feats_s[i_s]) if name in model.adapters \
                else feats_s[i_s]
            values = {'pkd': pkd(feat_s, feats_t[i_t]).item(),
                      'mse': mse(feat_s, feats_t[i_t]).item()}
        for k, v in values.items():
            totals[k] += v
        rows.append(f'| {name} | {tuple(feat_s.shape)} -> {tuple(feats_t[i_t].shape)} | '
                    f'{feats_t[i_t].pow(2).mean().item():.4f} | {values["pkd"]:.4f} | '
                    f'{values["mse"]:.4f} |')
    lines = header('PKD benchmark: initial distillation terms (MSE weight probe)',
                   args.device)
    lines += [f'Untrained student (seed 0), teacher `{teacher_ckpt}`, one batch of the '
              'demo train dataloader.', '',
              '| level | student -> teacher map | mean T^2 | PKD, weight 1 | MSE, weight 1 |',
              '|---|---|---:|---:|---:|', *rows,
              f'| sum | | | {totals["pkd"]:.4f} | {totals["mse"]:.4f} |', '',
              f'MSE weight giving the initial magnitude of PKD at weight 1: '
              f'**{totals["pkd"] / max(totals["mse"], 1e-12):.3g}**', '']
    emit(lines, args.out)
    return float(f'{totals["pkd"] / max(totals["mse"], 1e-12):.3g}')


# ----------------------------------------------------------------- table part
def table_variants(args: argparse.Namespace) -> Dict[str, Tuple[str, str, List[str]]]:
    """name -> (label, config, --cfg-options) of the students compared."""
    w = args.small_weight
    return {
        'plain': ('plain student (no teacher)', PLAIN, []),
        'pkd': ("PKD w6, authors' pairing (S P3..P6 -> T P2..P5)", DISTILL, []),
        'pkd_stride': ('PKD w6, stride pairing (S P3..P6 -> T P3..P6)', DISTILL,
                       ['model.distill.pairing=stride',
                        'model.distill.levels=[8,16,32,64]']),
        'mse': (f"MSE w{args.mse_weight:g}, authors' pairing", DISTILL,
                ['model.distill.loss.type=FeatureMSELoss',
                 f'model.distill.loss.loss_weight={args.mse_weight}']),
        f'pkd_w{w:g}': (f"PKD w{w:g}, authors' pairing", DISTILL,
                        [f'model.distill.loss.loss_weight={w}']),
    }


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


def loss_summary(records: List[dict]) -> dict:
    """First and last logged training losses: total, distillation part, grad norm."""
    logged = [r for r in records if 'loss' in r and ('iter' in r or 'step' in r)]
    if not logged:
        return {}
    out = {}
    for tag, rec in (('first', logged[0]), ('last', logged[-1])):
        distill = sum(v for k, v in rec.items() if k.startswith(DISTILL_PREFIXES))
        out[tag] = dict(iter=int(rec.get('iter', rec.get('step'))), loss=float(rec['loss']),
                        distill=float(distill), grad_norm=rec.get('grad_norm'))
    return out


def train_and_test(config: str, seed: int, work_dir: str, options: List[str],
                   test_options: List[str]) -> dict:
    """Train ``config`` with ``seed``, test its last checkpoint; the metric and the
    training losses."""
    shutil.rmtree(work_dir, ignore_errors=True)  # a clean dir: one test json to find
    os.makedirs(work_dir)
    run_tool(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
              f'randomness.seed={seed}', *options], osp.join(work_dir, 'train_stdout.log'))
    losses = loss_summary(scalars_of(work_dir))
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
        if not no_detections:
            raise SystemExit(f'{METRIC} missing in {found[-1]}: {sorted(metrics)}')
        # mmdet's CocoMetric reports nothing then; the mAP is 0
        print(f'[bench_pkd] {work_dir}: no detections at all, {METRIC} = 0', flush=True)
    return dict(value=float(metrics.get(METRIC, 0.0)), losses=losses)


def mean_std(values: List[float], signed: bool = False) -> str:
    """'mean ± sample std' (std '-' for a single value)."""
    std = f'{statistics.stdev(values):.3f}' if len(values) > 1 else '-'
    return f'{statistics.mean(values):{"+" if signed else ""}.3f} ± {std}'


def table_part(args: argparse.Namespace, teacher_ckpt: str) -> None:
    """Student mAP per variant and seed, via tools/train.py and tools/test.py.

    Resumable: each (variant, seed) run leaves ``<work_root>/<variant>_seed<seed>/
    result.json``; a finished run is reused unless ``--force``.
    """
    teacher_ckpt = osp.abspath(teacher_ckpt)
    variants = table_variants(args)
    chosen = args.variants or list(variants)
    unknown = [v for v in chosen if v not in variants]
    if unknown:
        raise SystemExit(f'unknown --variants {unknown}; known: {list(variants)}')
    test_options = []
    if args.test_images:
        test_options = [f'test_dataloader.dataset.indices={args.test_images}']
    results: Dict[str, Dict[int, dict]] = {v: {} for v in chosen}
    start = time.time()
    for seed in args.seeds:
        for name in chosen:  # interleaved: load drift hits all variants alike
            label, config, extra = variants[name]
            if config != PLAIN:
                extra = [f'model.teacher.checkpoint={teacher_ckpt}', *extra]
            work_dir = osp.join(args.work_root, f'{name}_seed{seed}')
            result_path = osp.join(work_dir, 'result.json')
            if osp.isfile(result_path) and not args.force:
                with open(result_path) as f:
                    previous = json.load(f)
                if previous.get('options') == extra:  # same run: reuse it
                    results[name][seed] = previous
                    continue
            t0 = time.time()
            result = train_and_test(config, seed, work_dir,
                                    extra + schedule_options(args.iters), test_options)
            result.update(seconds=time.time() - t0, options=extra, teacher=teacher_ckpt)
            with open(result_path, 'w') as f:
                json.dump(result, f, indent=1)
            results[name][seed] = result
            print(f'[bench_pkd] {name}, seed {seed}: {METRIC} {result["value"]:.3f} '
                  f'({result["seconds"]:.0f} s, {work_dir})', flush=True)
    emit(table_lines(args, variants, results, teacher_ckpt, time.time() - start),
         args.out)


def table_lines(args, variants, results, teacher_ckpt: str, seconds: float) -> List[str]:
    """The Markdown tables of :func:`table_part` (only seeds every variant finished)."""
    seeds = [s for s in args.seeds if all(s in r for r in results.values())]
    missing = {v: [s for s in args.seeds if s not in r] for v, r in results.items()}
    missing = {v: s for v, s in missing.items() if s}
    iters = args.iters if args.iters is not None else "the configs' 200"
    lines = header(f'PKD: {len(results)} students on the demo data, {len(seeds)} seeds',
                   args.device)
    lines += [
        f'{iters} iterations per student, batch 8, AdamW lr 1e-3, seeds '
        f'{", ".join(map(str, seeds))}; teacher `{osp.relpath(teacher_ckpt, ROOT)}`; '
        f'each final checkpoint tested with `{PLAIN}` on the demo val set'
        + (f' (first {args.test_images} images only)' if args.test_images else '')
        + f'; {seconds:.0f} s of training in this invocation (runs finished earlier '
        'are reused from their result.json). std: sample std over seeds. Paired '
        'difference: per seed, variant minus plain, then mean ± std of those.', '']
    if missing:
        lines += ['NOT RUN (yet): ' + '; '.join(f'{v} seeds {s}' for v, s in
                                               missing.items()), '']
    seed_list = ', '.join(map(str, seeds))
    lines += [f'| student | {METRIC} per seed ({seed_list}) | mean ± std | '
              'minus plain, paired by seed | mean ± std of the differences |',
              '|---|---|---|---|---|']

    def vals(name):
        return [results[name][s]['value'] for s in seeds]

    for name in results:
        v = vals(name)
        if not v:
            continue
        row = f'| {variants[name][0]} | {", ".join(f"{x:.3f}" for x in v)} | {mean_std(v)} |'
        if name != 'plain' and 'plain' in results:
            d = [a - b for a, b in zip(v, vals('plain'))]
            row += f' {", ".join(f"{x:+.3f}" for x in d)} | {mean_std(d, True)} |'
        else:
            row += ' | |'
        lines.append(row)
    comparisons = [('pkd', 'mse'), ('pkd', 'pkd_stride'),
                   (f'pkd_w{args.small_weight:g}', 'pkd')]
    comparisons = [(a, b) for a, b in comparisons if a in results and b in results]
    if comparisons and seeds:
        lines += ['', '| paired comparison | per seed | mean ± std |', '|---|---|---|']
        for a, b in comparisons:
            d = [x - y for x, y in zip(vals(a), vals(b))]
            lines.append(f'| {variants[a][0]} minus {variants[b][0]} | '
                         f'{", ".join(f"{x:+.3f}" for x in d)} | {mean_std(d, True)} |')
    lines += ['', 'Training losses from the logs (mean over the seeds above): total '
              'loss, its distillation part, and the gradient norm before clipping '
              '(the config clips at 10), at the first and the last logged iteration.',
              '', '| student | first: loss / distill / grad norm | '
              'last: loss / distill / grad norm |', '|---|---|---|']
    for name in results:
        cells = []
        for tag in ('first', 'last'):
            recs = [results[name][s]['losses'].get(tag) for s in seeds]
            recs = [r for r in recs if r]
            if not recs:
                cells.append('-')
                continue
            gn = [r['grad_norm'] for r in recs if r.get('grad_norm') is not None]
            cells.append(f'it {recs[0]["iter"]}: '
                         f'{statistics.mean(r["loss"] for r in recs):.2f} / '
                         f'{statistics.mean(r["distill"] for r in recs):.2f} / '
                         + (f'{statistics.mean(gn):.1f}' if gn else '-'))
        if seeds:
            lines.append(f'| {variants[name][0]} | {cells[0]} | {cells[1]} |')
    return lines + ['']


# ----------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--part', choices=['speed', 'teacher', 'probe', 'table', 'both',
                                           'effect'],
                        default='both', help="'both': speed and table; 'effect': "
                        'teacher, then probe and table under it')
    parser.add_argument('--teacher-ckpt', help='teacher checkpoint for the table part '
                        '(default: the one --part teacher left under --work-root); the '
                        'speed part uses a random teacher without it')
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
    parser.add_argument('--variants', nargs='+', default=None,
                        help='table part: a subset of plain pkd pkd_stride mse pkd_w<w>')
    parser.add_argument('--small-weight', type=float, default=1.0,
                        help='table part: loss weight of the small-weight PKD variant')
    parser.add_argument('--mse-weight', type=float, default=None,
                        help='table part: loss weight of the MSE variant (default: '
                        'the probe part\'s, i.e. the initial magnitude of PKD at weight 1)')
    parser.add_argument('--teacher-iters', type=int, default=None,
                        help="teacher part: override the config's iteration cap")
    parser.add_argument('--force', action='store_true',
                        help='rerun runs whose result.json exists')
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
    if args.part in ('probe', 'table', 'both') and not (args.save_random_teacher
                                               or args.memory_worker):
        if not args.teacher_ckpt and not osp.isfile(osp.join(
                ROOT, args.work_root, 'teacher', 'result.json')):
            parser.error('the table part needs a trained teacher: --teacher-ckpt PATH, '
                         'or first --part teacher (it runs tools/train.py '
                         f'{TEACHER_CONVERGED}); or run --part speed alone')
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
    teacher_ckpt = args.teacher_ckpt
    if args.part in ('teacher', 'effect'):
        teacher_ckpt = teacher_part(args)
    if args.part in ('probe', 'table', 'both') and not teacher_ckpt:
        with open(osp.join(args.work_root, 'teacher', 'result.json')) as f:
            teacher_ckpt = json.load(f)['checkpoint']
    if args.part == 'probe' or (args.part in ('table', 'both', 'effect')
                                and args.mse_weight is None):
        weight = probe_part(args, teacher_ckpt)
        if args.mse_weight is None:
            args.mse_weight = weight
    if args.part in ('table', 'both', 'effect'):
        table_part(args, teacher_ckpt)


if __name__ == '__main__':
    main()
