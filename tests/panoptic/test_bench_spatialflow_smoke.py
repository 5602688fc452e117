"""Smoke test of tools/benchmarks/bench_spatialflow.py at a tiny input (one timed
round): both models run predict(), the stage split and the FLOP count work."""
import re

from tests.tool_runner import run_tool

BENCH = 'tools/benchmarks/bench_spatialflow.py'


def test_bench_prints_ratio_breakdown_and_flops():
    proc = run_tool([BENCH, '--size', '128', '160', '--runs', '1', '--warmup', '0'],
                    timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = proc.stdout
    # Panoptic FPN is the baseline of the ratio column.
    assert re.search(r'\| Panoptic FPN R50 \| [\d.]+ M \| [\d.]+ \| \d+ ms \| 1\.00 \|', out), out
    assert re.search(r'\| SpatialFlow R50 \| [\d.]+ M \| [\d.]+ \| \d+ ms \| [\d.]+ \|', out), out
    for step in ('mask branch (100 RoIs) + paste', 'RoI box head (1000 RoIs) + NMS',
                 'FLOPs: mask head x100 RoIs'):
        assert step in out, out


def test_bench_rejects_sizes_fpn_cannot_pad():
    proc = run_tool([BENCH, '--size', '100', '160'], timeout=120)
    assert proc.returncode == 2 and 'multiples of 32' in proc.stderr
