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

This script measures; the Markdown is written by ``pkd_report.py`` (with the shared
``bench_report.py``), peak memory is probed by ``memory_probe.py``, and the
train/test subprocesses run through ``tools/_runner.py`` (their progress on the
console, the full output in ``<work dir>/{train,test}_stdout.log``).

Threads: torch follows ``OMP_NUM_THREADS`` when it is set (also in the subprocesses,
which inherit the environment); ``--threads`` overrides it in this process.
Work dirs (``--work-root``, default work_dirs/bench_pkd/): ``teacher/`` and
``<variant>_seed<seed>/``; an unfinished run's dir is deleted and rerun.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import shlex
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a checkout
sys.path.insert(0, osp.join(ROOT, 'tools'))  # _runner
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # also when loaded by path

from _runner import (last_checkpoint, logged_scalars, read_test_metrics,  # noqa: E402
                     run_tool, short_schedule)
from bench_report import emit, header  # noqa: E402
from memory_probe import measure_step, report, run_worker  # noqa: E402
from pkd_report import (METRIC, SpeedSetting, memory_section, speed_lines,  # noqa: E402
                        table_lines, teacher_lines)

PLAIN = 'configs/demo/pkd_retinanet_r18_plain.py'
DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'
TEACHER = 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py'
TEACHER_CONVERGED = 'configs/demo/pkd_teacher_faster_rcnn_r18_demo_converged.py'
DISTILL_PREFIXES = ('loss_pkd', 'loss_mse')  # the distillation terms in the logs


# --------------------------------------------------------------------- helpers
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
    setting = SpeedSetting(
        shape=tuple(inputs.shape),
        boxes=sum(len(s.gt_instances) for s in batch['data_samples']),
        levels=len(distiller.level_pairs), adapters=len(distiller.adapters),
        warmup=args.warmup, repeats=args.repeats,
        teacher=None if random_teacher else args.teacher_ckpt)
    lines += speed_lines(times, setting)
    del plain, distiller, optim_plain, optim_distill  # before the memory subprocesses
    if not args.skip_memory:
        memory = {v: run_worker([osp.abspath(__file__), '--memory-worker', v,
                                 '--teacher-ckpt', teacher_ckpt, '--device', args.device],
                                cwd=ROOT)
                  for v in ('plain', 'distiller')}
        lines += memory_section(memory, args.device.startswith('cuda'))
    emit(lines, args.out)


# --------------------------------------------------------------- teacher part
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
        result = train_teacher(work_dir, args.teacher_iters)
        with open(result_path, 'w') as f:
            json.dump(result, f, indent=1)
    if logged_scalars(work_dir):  # recomputed: result.json of older versions
        result['curve'] = val_curve(logged_scalars(work_dir))
    emit(teacher_lines(result, TEACHER_CONVERGED, args.device), args.out)
    return result['checkpoint']


def train_teacher(work_dir: str, iters: Optional[int]) -> dict:
    """Train TEACHER_CONVERGED (seed 0; ``iters`` caps it) in a clean ``work_dir``:
    its validation curve, best checkpoint, iterations, seconds and command."""
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    options = ['randomness.seed=0']
    if iters:  # the config validates every 100 iterations with early stop: kept
        options += [f'train_cfg.max_iters={iters}', f'param_scheduler.1.end={iters}']
    start = time.time()
    run_tool(['tools/train.py', TEACHER_CONVERGED, '--work-dir', work_dir,
              '--cfg-options', *options], osp.join(work_dir, 'train_stdout.log'))
    records = logged_scalars(work_dir)
    curve = val_curve(records)
    best = sorted(glob.glob(osp.join(work_dir, 'best_coco_bbox_mAP_iter_*.pth')))
    if not curve or not best:
        raise SystemExit(f'teacher run left no validation curve or best checkpoint '
                         f'in {work_dir}')
    trained = max(int(r.get('iter', r.get('step', 0))) for r in records if 'loss' in r)
    return dict(curve=curve, checkpoint=best[-1], trained_iters=trained,
                seconds=time.time() - start,
                command=shlex.join(['python', 'tools/train.py', TEACHER_CONVERGED,
                                    '--cfg-options', *options]))


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
    # the configs' 50-iteration warm-up, scaled down for short runs
    return short_schedule(iters, warmup=max(1, min(50, iters // 4)))


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
    losses = loss_summary(logged_scalars(work_dir))
    # The training configs validate nothing (val_cfg=None); the plain student config
    # tests both checkpoints the same way (a distilled one is student + adapters).
    test_args = ['tools/test.py', PLAIN, last_checkpoint(work_dir), '--work-dir', work_dir]
    if test_options:
        test_args += ['--cfg-options', *test_options]
    run_tool(test_args, osp.join(work_dir, 'test_stdout.log'))
    metrics_json, metrics = read_test_metrics(work_dir)
    if METRIC not in metrics:
        with open(osp.join(work_dir, 'test_stdout.log')) as f:
            no_detections = 'results of the whole dataset is empty' in f.read()
        if not no_detections:
            raise SystemExit(f'{METRIC} missing in {metrics_json}: {sorted(metrics)}')
        # mmdet's CocoMetric reports nothing then; the mAP is 0
        print(f'[bench_pkd] {work_dir}: no detections at all, {METRIC} = 0', flush=True)
    return dict(value=float(metrics.get(METRIC, 0.0)), losses=losses)


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
    if args.memory_worker:  # one step's peak memory, in this fresh process
        setup_registry()
        model, optim, cfg = build_variant(args.memory_worker, args.teacher_ckpt,
                                          args.device)
        batch = fixed_batch(cfg)
        report(measure_step(lambda: model.train_step(batch, optim), args.device))
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
