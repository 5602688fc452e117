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


def test_table_part_without_teacher_checkpoint_says_what_is_missing():
    proc = run_tool([BENCH, '--part', 'table'], timeout=120)
    assert proc.returncode == 2
    assert '--teacher-ckpt' in proc.stderr and 'tools/train.py' in proc.stderr
