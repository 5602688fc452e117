"""PKD through the user-facing tools: train, dist_train, test with the plain student
config, the checkpoint converter, the COCO configs and their errors."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmext.utils.checkpoint import load_checkpoint_file
from tests.tool_runner import ROOT, run_tool

DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'
PLAIN = 'configs/demo/pkd_retinanet_r18_plain.py'
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
        'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2']
FAST_TEST = ['test_dataloader.batch_size=2', 'test_dataloader.num_workers=0',
             'test_dataloader.persistent_workers=False',
             'test_dataloader.dataset.indices=4']


def _log(proc):
    return proc.stdout + proc.stderr


def _one_error_line(proc):
    assert proc.returncode == 2, _log(proc)[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'Iter(train)' not in _log(proc)  # failed before the first iteration
    return errors[0]


@pytest.fixture(scope='module')
def distilled(tmp_path_factory, teacher_checkpoint):
    work_dir = tmp_path_factory.mktemp('pkd_train')
    proc = run_tool(['tools/train.py', DISTILL, '--work-dir', str(work_dir),
                     '--cfg-options', f'model.teacher.checkpoint={teacher_checkpoint}',
                     *FAST])
    assert proc.returncode == 0, _log(proc)[-4000:]
    return work_dir, _log(proc)


def test_train_logs_one_pkd_term_per_level(distilled):
    work_dir, log = distilled
    for level in range(4):  # the authors' four levels
        assert f'loss_pkd_fpn{level}:' in log
    assert 'loss_pkd_fpn4' not in log and 'loss_cls:' in log
    assert (work_dir / 'iter_2.pth').is_file()


def test_checkpoint_holds_the_student_only(distilled, teacher_checkpoint):
    state = load_checkpoint_file(str(distilled[0] / 'iter_2.pth'))['state_dict']
    assert 'backbone.conv1.weight' in state and 'bbox_head.retina_cls.weight' in state
    assert not any(k.startswith(('student.', 'teacher.', 'rpn_head.', 'roi_head.'))
                   for k in state)
    # the teacher file is untouched and its weights differ from the student's
    teacher = load_checkpoint_file(str(teacher_checkpoint))['state_dict']
    assert teacher['neck.fpn_convs.0.conv.weight'].shape[0] == 128
    assert state['neck.fpn_convs.0.conv.weight'].shape[0] == 64


def test_plain_student_config_tests_the_distilled_checkpoint(distilled, tmp_path):
    proc = run_tool(['tools/test.py', PLAIN, str(distilled[0] / 'iter_2.pth'),
                     '--work-dir', str(tmp_path), '--cfg-options', *FAST_TEST])
    log = _log(proc)
    assert proc.returncode == 0, log[-4000:]
    # (after 2 iterations the student may detect nothing: no mAP, but it evaluates)
    assert 'Load checkpoint from' in log and 'Evaluating bbox' in log
    assert 'missing keys in source state_dict' not in log
    assert 'size mismatch' not in log


def test_test_tool_refuses_an_unconverted_mmrazor_checkpoint(tmp_path):
    """MMRazor's published layout fed to tools/test.py with the plain student: one
    error line naming the converter (mmengine alone would evaluate an unloaded
    model with a warning)."""
    from tests.distill.test_convert_distill_checkpoint import mmrazor_checkpoint
    path = tmp_path / 'pkd_mmrazor.pth'
    mmrazor_checkpoint(path)
    proc = run_tool(['tools/test.py', PLAIN, str(path), '--work-dir', str(tmp_path),
                     '--cfg-options', *FAST_TEST])
    error = _one_error_line(proc)
    assert "MMRazor's distillation layout" in error
    assert 'tools/convert_distill_checkpoint.py' in error and 'pkd_mmrazor.pth' in error
    assert 'Evaluating' not in _log(proc)


def test_converter_gives_exactly_the_plain_student_keys(distilled, tmp_path):
    import mmext  # noqa: F401
    from mmdet.registry import MODELS
    out = tmp_path / 'student.pth'
    proc = run_tool(['tools/convert_distill_checkpoint.py',
                     str(distilled[0] / 'iter_2.pth'), str(out)])
    assert proc.returncode == 0, _log(proc)[-3000:]
    converted = load_checkpoint_file(str(out))
    assert set(converted) == {'meta', 'state_dict'}
    plain = MODELS.build(Config.fromfile(osp.join(ROOT, PLAIN)).model)
    assert set(converted['state_dict']) == set(plain.state_dict())
    plain.load_state_dict(converted['state_dict'], strict=True)


def test_dist_train_two_gloo_processes(tmp_path, teacher_checkpoint):
    proc = run_tool(['tools/dist_train.sh', DISTILL, '2', '--work-dir', str(tmp_path),
                     '--cfg-options', f'model.teacher.checkpoint={teacher_checkpoint}',
                     *FAST], PORT='29541')
    log = _log(proc)
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'CPUDistributedDataParallel' in log
    assert 'loss_pkd_fpn0' in log
    assert (tmp_path / 'iter_2.pth').is_file()


def test_misspelt_distill_key_fails_before_training(tmp_path, teacher_checkpoint):
    line = _one_error_line(run_tool(['tools/train.py', DISTILL, '--work-dir',
                                     str(tmp_path), '--cfg-options',
                                     f'model.teacher.checkpoint={teacher_checkpoint}',
                                     'model.distill.levles=[0,1]', *FAST]))
    assert "unknown key 'levles' (did you mean 'levels'?)" in line
    assert 'accepted keys: adapter, levels, loss, pairing' in line


def test_missing_teacher_checkpoint_fails_before_training(tmp_path):
    missing = tmp_path / 'teacher_missing.pth'
    line = _one_error_line(run_tool(['tools/train.py', DISTILL, '--work-dir',
                                     str(tmp_path), '--cfg-options',
                                     f'model.teacher.checkpoint={missing}', *FAST]))
    assert str(missing) in line and 'not found' in line


def test_teacher_checkpoint_of_another_architecture_fails_before_training(
        tmp_path, distilled):
    student_ckpt = distilled[0] / 'iter_2.pth'  # a RetinaNet, not the Faster R-CNN
    line = _one_error_line(run_tool(['tools/train.py', DISTILL, '--work-dir',
                                     str(tmp_path), '--cfg-options',
                                     f'model.teacher.checkpoint={student_ckpt}', *FAST]))
    assert str(student_ckpt) in line and 'does not match the teacher config' in line


def test_coco_config_without_coco_says_where_to_put_it(tmp_path):
    line = _one_error_line(run_tool(['tools/train.py', 'configs/pkd/retina_r50.py',
                                     '--work-dir', str(tmp_path), '--cfg-options',
                                     f'train_dataloader.dataset.data_root={tmp_path}/coco/']))
    assert f'{tmp_path}/coco/' in line and 'cocodataset.org' in line


def test_coco_config_without_teacher_checkpoint_says_where_to_get_it(tmp_path):
    coco = tmp_path / 'coco'
    for sub in ('annotations', 'train2017', 'val2017'):
        (coco / sub).mkdir(parents=True)
    for split in ('train', 'val'):
        (coco / 'annotations' / f'instances_{split}2017.json').write_text('{}')
    line = _one_error_line(run_tool(
        ['tools/train.py', 'configs/pkd/retina_r50.py', '--work-dir', str(tmp_path),
         '--cfg-options', f'train_dataloader.dataset.data_root={coco}/',
         f'val_dataloader.dataset.data_root={coco}/']))
    assert 'checkpoints/mask_rcnn_swin-s-p4-w7' in line and 'not found' in line
    assert 'https://download.openmmlab.com/mmdetection/v2.0/swin/' in line
