"""tools/benchmarks/bench_pkd.py at the smallest size: one timed round of the speed
part, whose printed figures must be consistent (floor = (a) + (b), the ratios of the
printed medians) and describe the demo distiller (levels, adapters, batch), plus the
table part's arithmetic on given results.

The memory subprocesses (two more model builds) are skipped to stay well under a
minute on 2 cores; the table part runs for its argument check only."""
import re

import pytest

from tests.tool_runner import load_tool, run_tool

BENCH = 'tools/benchmarks/bench_pkd.py'


def _ms(out: str, label: str) -> float:
    """The median-ms cell of the speed table's row ``label``."""
    match = re.search(rf'^\| {re.escape(label)} \| ([\d.]+) \|', out, re.M)
    assert match, f'no row {label!r} in:\n{out[-3000:]}'
    return float(match.group(1))


def _ratio(out: str, name: str) -> float:
    match = re.search(rf'- {name}: \*\*([\d.]+)\*\*', out)
    assert match, f'no {name} ratio in:\n{out[-3000:]}'
    return float(match.group(1))


def _ratio_tolerance(num: float, den: float) -> float:
    """Error of num / den from cells rounded to 0.1 ms, plus the ratio's 3 decimals."""
    return num / den * (0.05 / num + 0.05 / den) + 0.0005


def test_speed_part_figures_are_consistent_and_describe_the_demo_distiller():
    proc = run_tool([BENCH, '--part', 'speed', '--repeats', '1', '--warmup', '0',
                     '--skip-memory'],
                    timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-3000:]
    # The demo distiller: the authors' four levels, a 64 -> 128 channel adapter each;
    # one batch of the demo train dataloader (batch size 8, 160x160 crops).
    assert re.search(r'One fixed batch of the demo train dataloader: 8 images, padded '
                     r'input 160x160, [1-9]\d* gt boxes\.', out), out[-3000:]
    assert '4 PKD levels, 4 adapters.' in out
    assert 'Teacher weights: random initialisation' in out
    plain = _ms(out, '(a) plain student training step')
    teacher = _ms(out, '(b) teacher backbone+neck forward, no_grad')
    floor = _ms(out, 'floor = (a) + (b), per round')
    distiller = _ms(out, '(c) distiller training step')
    assert min(plain, teacher, distiller) > 0
    # One round: each median is that round's time, so the floor is the sum
    # (each cell rounded to 0.1 ms) and the ratios are those of the printed cells.
    assert floor == pytest.approx(plain + teacher, abs=0.15)
    assert _ratio(out, 'distiller / plain') == pytest.approx(
        distiller / plain, abs=_ratio_tolerance(distiller, plain))
    ratio_floor = _ratio(out, 'distiller / floor')
    assert ratio_floor == pytest.approx(
        distiller / floor, abs=_ratio_tolerance(distiller, floor))
    assert f'median of the per-round ratios {ratio_floor:.3f}' in out
    verdict = 'within' if ratio_floor <= 1.10 else 'NOT within'
    assert f'-> {verdict} the 1.10 target' in out


def test_table_part_without_teacher_checkpoint_says_what_is_missing(tmp_path):
    # an empty --work-root: no teacher left by an earlier --part teacher either
    proc = run_tool([BENCH, '--part', 'table', '--work-root', str(tmp_path)], timeout=120)
    assert proc.returncode == 2
    assert '--teacher-ckpt' in proc.stderr and '--part teacher' in proc.stderr
    assert 'tools/train.py' in proc.stderr


def _bench_module():
    return load_tool('tools/benchmarks/bench_pkd.py')


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
