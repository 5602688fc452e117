"""tools/slurm_train.sh and tools/slurm_test.sh build mmdet's srun command line
around our tools/train.py and tools/test.py (checked with a fake srun)."""
import os
import os.path as osp
import stat
import subprocess

import pytest

from tests.tool_runner import ROOT

FAKE_SRUN = '''#!/usr/bin/env bash
# Records what it was called with, one argument per line, and the PYTHONPATH.
printf '%s\\n' "$@" > "$SRUN_RECORD"
echo "PYTHONPATH=$PYTHONPATH" >> "$SRUN_RECORD"
'''


@pytest.mark.parametrize('script', ['tools/slurm_train.sh', 'tools/slurm_test.sh'])
def test_bash_syntax(script):
    proc = subprocess.run(['bash', '-n', osp.join(ROOT, script)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def _run(tmp_path, args, **env):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / 'srun_args.txt'
    full_env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
                    SRUN_RECORD=str(record), PYTHONPATH='/site', **env)
    for key in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS'):
        if key not in env:
            full_env.pop(key, None)
    proc = subprocess.run(['bash', *args], cwd=tmp_path, capture_output=True, text=True,
                          env=full_env)
    assert proc.returncode == 0, proc.stderr
    lines = record.read_text().splitlines()
    return lines[:-1], lines[-1], proc


def test_slurm_train_command_line(tmp_path):
    args, pythonpath, proc = _run(
        tmp_path, [osp.join(ROOT, 'tools/slurm_train.sh'), 'gpu', 'pkd', 'cfg.py', 'wd',
                   '--amp', '--cfg-options', 'train_cfg.max_iters=10'],
        GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='4',
        SRUN_ARGS='--mem=40G --time=2:00:00', PYTHON='python3')
    tools = osp.join(ROOT, 'tools')
    assert args == [
        '-p', 'gpu', '--job-name=pkd', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=4', '--kill-on-bad-exit=1',
        '--mem=40G', '--time=2:00:00',
        'python3', '-u', osp.join(tools, 'train.py'), 'cfg.py', '--work-dir=wd',
        '--launcher=slurm', '--amp', '--cfg-options', 'train_cfg.max_iters=10']
    assert pythonpath == f'PYTHONPATH={tools}/..:/site'
    assert 'srun -p gpu' in proc.stderr  # set -x echoes the command, as mmdet's


def test_slurm_test_defaults_and_quoting(tmp_path):
    """mmdet's defaults (8 GPUs, 8 per node, 5 CPUs each); an option value with a
    space reaches test.py as one argument."""
    args, _, _ = _run(
        tmp_path, [osp.join(ROOT, 'tools/slurm_test.sh'), 'p1', 'job', 'cfg.py',
                   'model.pth', '--out', 'my results.pkl'], PYTHON='python3')
    assert args == [
        '-p', 'p1', '--job-name=job', '--gres=gpu:8', '--ntasks=8',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        'python3', '-u', osp.join(ROOT, 'tools', 'test.py'), 'cfg.py', 'model.pth',
        '--launcher=slurm', '--out', 'my results.pkl']


@pytest.mark.parametrize('script', ['tools/slurm_train.sh', 'tools/slurm_test.sh'])
def test_missing_arguments_print_usage(script, tmp_path):
    proc = subprocess.run(['bash', osp.join(ROOT, script), 'gpu', 'job'],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith('usage: ')
