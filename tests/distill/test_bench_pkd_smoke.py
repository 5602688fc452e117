"""Smoke test of tools/benchmarks/bench_pkd.py (one timed round; no numbers checked).

The memory subprocesses (two more model builds) are skipped to stay well under a
minute on 2 cores; the table part is covered by its argument check only."""
from tests.tool_runner import run_tool

BENCH = 'tools/benchmarks/bench_pkd.py'


def test_speed_part_prints_the_tables():
    proc = run_tool([BENCH, '--part', 'speed', '--repeats', '1', '--warmup', '0',
                     '--skip-memory'],
                    timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for expected in ('(c) distiller training step', 'distiller / floor',
                     'random initialisation', 'torch threads'):
        assert expected in proc.stdout, proc.stdout[-3000:]


def test_table_part_without_teacher_checkpoint_says_what_is_missing(tmp_path):
    # an empty --work-root: no teacher left by an earlier --part teacher either
    proc = run_tool([BENCH, '--part', 'table', '--work-root', str(tmp_path)], timeout=120)
    assert proc.returncode == 2
    assert '--teacher-ckpt' in proc.stderr and '--part teacher' in proc.stderr
    assert 'tools/train.py' in proc.stderr


def _bench_module():
    import importlib.util
    import os.path as osp

    from tests.tool_runner import ROOT
    spec = importlib.util.spec_from_file_location(
        'bench_pkd', osp.join(ROOT, 'tools/benchmarks/bench_pkd.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_lines_give_mean_std_and_paired_differences():
    import argparse
    bench = _bench_module()
    args = argparse.Namespace(seeds=[0, 1, 2], iters=None, test_images=None,
                              device='cpu', small_weight=1.0, mse_weight=1.0)
    variants = bench.table_variants(args)
    assert list(variants) == ['plain', 'pkd', 'pkd_stride', 'mse', 'pkd_w1']
    assert 'model.distill.pairing=stride' in variants['pkd_stride'][2]
    assert 'model.distill.loss.type=FeatureMSELoss' in variants['mse'][2]
    losses = {'first': dict(iter=20, loss=5.0, distill=4.0, grad_norm=12.0),
              'last': dict(iter=200, loss=2.0, distill=1.0, grad_norm=3.0)}
    values = {'plain': [0.10, 0.12, 0.11], 'pkd': [0.13, 0.12, 0.14],
              'pkd_stride': [0.10, 0.10, 0.10], 'mse': [0.09, 0.10, 0.11],
              'pkd_w1': [0.20, 0.20, 0.20]}
    results = {v: {s: dict(value=x, losses=losses) for s, x in zip([0, 1, 2], vals)}
               for v, vals in values.items()}
    del results['mse'][2]  # an unfinished run: its seed is left out of every row
    text = '\n'.join(bench.table_lines(args, variants, results, '/tmp/t.pth', 1.0))
    assert 'NOT RUN (yet): mse seeds [2]' in text
    # seeds 0 and 1 only: PKD 0.13, 0.12 vs plain 0.10, 0.12 -> +0.030, +0.000
    assert ("| PKD w6, authors' pairing (S P3..P6 -> T P2..P5) | 0.130, 0.120 | "
            '0.125 ± 0.007 | +0.030, +0.000 | +0.015 ± 0.021 |') in text
    assert '| plain student (no teacher) | 0.100, 0.120 | 0.110 ± 0.014 | | |' in text
    assert "minus MSE w1, authors' pairing | +0.040, +0.020 | +0.030 ± 0.014 |" in text
    assert 'it 20: 5.00 / 4.00 / 12.0 | it 200: 2.00 / 1.00 / 3.0' in text


def test_val_curve_takes_the_iteration_of_the_preceding_training_record():
    bench = _bench_module()
    records = [{'loss': 2.0, 'iter': 80, 'step': 80}, {'loss': 1.5, 'iter': 100, 'step': 100},
               {'coco/bbox_mAP': 0.05, 'step': 0},  # mmengine: val records have step 0
               {'loss': 1.2, 'iter': 120, 'step': 120}, {'loss': 1.0, 'iter': 200, 'step': 200},
               {'coco/bbox_mAP': 0.15, 'step': 0}]
    assert bench.val_curve(records) == [(100, 0.05), (200, 0.15)]
