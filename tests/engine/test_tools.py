"""The user-facing tools: train, resume, distributed on CPU, and bad input."""
import glob
import os.path as osp

import pytest

from mmext.utils.checkpoint import load_checkpoint_file
from tests.tool_runner import ROOT, run_tool

DEMO = 'configs/demo/retinanet_r18_demo.py'
# A handful of small iterations: we test the plumbing, not the accuracy.
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1']


def _train(work_dir, iters, *extra, ckpt_every=None):
    options = FAST + [f'train_cfg.max_iters={iters}', 'train_cfg.val_interval=1000',
                      f'default_hooks.checkpoint.interval={ckpt_every or iters}']
    return run_tool(['tools/train.py', DEMO, '--work-dir', str(work_dir), *extra,
                     '--cfg-options', *options])


def _iter_of(checkpoint):
    # Loads with torch's default weights_only=True: needs mmext's safe globals.
    import mmext  # noqa: F401
    return load_checkpoint_file(str(checkpoint))['meta']['iter']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('train')
    proc = _train(work_dir, 3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work_dir


def test_train_writes_checkpoint(trained):
    checkpoint = trained / 'iter_3.pth'
    assert checkpoint.is_file()
    assert _iter_of(checkpoint) == 3
    assert (trained / 'last_checkpoint').read_text().strip().endswith('iter_3.pth')


def test_resume_continues_at_saved_iteration(trained, tmp_path):
    # Copy so the module fixture stays untouched for other tests.
    import shutil
    work_dir = tmp_path / 'resume'
    shutil.copytree(trained, work_dir)
    proc = _train(work_dir, 5, '--resume')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 3' in log
    # Iterations 4 and 5 ran after the resume; 1-3 did not run again.
    assert 'Iter(train) [4/5]' in log and 'Iter(train) [5/5]' in log
    assert 'Iter(train) [1/5]' not in log
    assert _iter_of(work_dir / 'iter_5.pth') == 5


def test_load_from_checkpoint(trained, tmp_path):
    proc = _train(tmp_path, 1, '--cfg-options', f'load_from={trained / "iter_3.pth"}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Load checkpoint from' in proc.stdout + proc.stderr


def test_dist_train_two_cpu_processes(tmp_path):
    options = FAST + ['train_cfg.max_iters=2', 'train_cfg.val_interval=1000',
                      'default_hooks.checkpoint.interval=2']
    proc = run_tool(['tools/dist_train.sh', DEMO, '2', '--work-dir', str(tmp_path),
                     '--cfg-options', *options], PORT='29531')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert "'backend': 'gloo'" in log
    assert (tmp_path / 'iter_2.pth').is_file()


def test_test_tool_evaluates_and_draws(trained, tmp_path):
    proc = run_tool(['tools/test.py', DEMO, str(trained / 'iter_3.pth'), '--work-dir',
                     str(tmp_path), '--show-dir', 'vis', '--cfg-options',
                     'test_dataloader.batch_size=4', 'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False',
                     # 3 iterations leave every score near the 0.01 prior: keep
                     # them all so that there is something to evaluate and draw.
                     'model.test_cfg.score_thr=0.0'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    assert glob.glob(osp.join(tmp_path, '*', 'vis', '*.png'))


def test_dist_test_two_cpu_processes(trained, tmp_path):
    proc = run_tool(['tools/dist_test.sh', DEMO, str(trained / 'iter_3.pth'), '2',
                     '--work-dir', str(tmp_path), '--cfg-options',
                     'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False',
                     'model.test_cfg.score_thr=0.0'], PORT='29532')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'coco/bbox_mAP' in log  # rank 0 evaluated the gathered predictions


def _one_error_line(proc):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    return errors[0]


def test_missing_config_is_one_line():
    line = _one_error_line(run_tool(['tools/train.py', 'configs/nope/missing.py']))
    assert "configs/nope/missing.py' does not exist" in line


def test_missing_data_folder_is_one_line(tmp_path):
    cfg = tmp_path / 'coco_retina.py'
    cfg.write_text("_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n"
                   f"data_root = '{tmp_path}/no_coco/'\n"
                   "train_dataloader = dict(dataset=dict(data_root=data_root))\n"
                   "dataset_layout_hint = '<data_root>/annotations, train2017/'\n")
    line = _one_error_line(run_tool(['tools/train.py', str(cfg)]))
    assert f'{tmp_path}/no_coco/' in line and 'train_dataloader' in line
    assert 'Expected layout: <data_root>/annotations' in line


def test_unknown_model_type_hints_custom_imports(tmp_path):
    cfg = tmp_path / 'unknown.py'
    cfg.write_text(f"_base_ = '{osp.join(ROOT, DEMO)}'\n"
                   "model = dict(type='NoSuchDetector')\n")
    line = _one_error_line(run_tool(['tools/train.py', str(cfg)]))
    assert "'NoSuchDetector'" in line and 'custom_imports' in line


def test_missing_resume_checkpoint_is_one_line(tmp_path):
    line = _one_error_line(run_tool(['tools/train.py', DEMO, '--resume',
                                     str(tmp_path / 'none.pth')]))
    assert 'none.pth' in line
