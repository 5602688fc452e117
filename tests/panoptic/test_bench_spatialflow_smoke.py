"""Smoke tests of tools/benchmarks/bench_spatialflow.py at a tiny input (one timed
round): both models run predict(), the stage split and the FLOP count work, and the
demo-checkpoint rows; and of tools/benchmarks/spatialflow_ablation.py (one seed, two
iterations) against the current demo configs."""
import re

import pytest
import torch

from tests.tool_runner import ROOT, run_tool

BENCH = 'tools/benchmarks/bench_spatialflow.py'
DEMO = 'configs/demo/spatialflow_r18_demo.py'


@pytest.fixture
def untrained_demo_checkpoint(tmp_path):
    """A checkpoint of the demo config (its initial weights) in mmengine's format."""
    import os.path as osp

    import mmext  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(ROOT, DEMO)).model)
    model.init_weights()
    path = tmp_path / 'demo_init.pth'
    torch.save(dict(meta=dict(iter=0), state_dict=model.state_dict()), path)
    return path


def test_bench_prints_ratio_breakdown_and_flops(untrained_demo_checkpoint):
    proc = run_tool([BENCH, '--size', '128', '160', '--runs', '1', '--warmup', '0',
                     '--checkpoint', str(untrained_demo_checkpoint),
                     '--demo-images', '2'], timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = proc.stdout
    # Panoptic FPN is the baseline of the ratio column.
    assert re.search(r'\| Panoptic FPN R50 \| [\d.]+ M \| [\d.]+ \| \d+ ms \| 1\.00 \|', out), out
    assert re.search(r'\| SpatialFlow R50 \| [\d.]+ M \| [\d.]+ \| \d+ ms \| [\d.]+ \|', out), out
    for step in ('mask branch (100 RoIs) + paste', 'RoI box head (1000 RoIs) + NMS',
                 'FLOPs: mask head x100 RoIs'):
        assert step in out, out
    # Demo rows: the focal-loss prior (0.01) is under the config's 0.05 threshold,
    # so these initial weights detect nothing; random weights at threshold 0 paste
    # max_per_img = 100 masks (the worst case, ratio 1).
    assert re.search(r'\| trained: demo_init\.pth \| 0\.05 / 0\.37 \(config\) \| '
                     r'0\.0 \| 0\.0 \| [\d.]+ ms \| [\d.]+ \|', out), out
    assert re.search(r'\| random \| 0 / 0 \(worst case\) \| 100\.0 \| [\d.]+ \| '
                     r'[\d.]+ ms \| 1\.00 \|', out), out


def test_bench_rejects_sizes_fpn_cannot_pad():
    proc = run_tool([BENCH, '--size', '100', '160'], timeout=120)
    assert proc.returncode == 2 and 'multiples of 32' in proc.stderr


def test_bench_rejects_missing_checkpoint(tmp_path):
    proc = run_tool([BENCH, '--checkpoint', str(tmp_path / 'none.pth')], timeout=120)
    assert proc.returncode == 2 and 'none.pth: no such file' in proc.stderr


def test_ablation_runs_on_the_current_demo_configs(tmp_path):
    """One seed, 2 iterations, a 2-image val set: both variants train, validate and
    fill the table (values are meaningless at 2 iterations, only their range)."""
    proc = run_tool(['tools/benchmarks/spatialflow_ablation.py', '--seeds', '0',
                     '--iters', '2', '--work-root', str(tmp_path), '--cfg-options',
                     'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                     'train_dataloader.persistent_workers=False',
                     'val_dataloader.num_workers=0',
                     'val_dataloader.persistent_workers=False',
                     'val_dataloader.dataset.indices=2',
                     'param_scheduler.0.end=1', 'param_scheduler.1.begin=1'],
                    timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for variant in ('with flows', 'without flows'):
        row = re.search(rf'\| {variant} \| ([\d.]+) \| ([\d.]+) ± (\S+) \|',
                        proc.stdout)
        assert row, proc.stdout
        assert 0.0 <= float(row.group(1)) <= 100.0
        assert row.group(1) == row.group(2)  # one seed: mean = the seed's PQ
        assert row.group(3) == '-'  # and no std
