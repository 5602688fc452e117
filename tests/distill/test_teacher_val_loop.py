"""``val_cfg = dict(type='TeacherEvalValLoop')`` through tools/train.py: the teacher's
metrics appear in the validation log, equal to what tools/test.py gives for the
teacher config and checkpoint on the same images; the same under dist_train.sh (2
gloo processes, each evaluating its shard); the one-line errors.

The teacher is an untrained Faster R-CNN (training one to a non-zero mAP takes
minutes), so its COCO mAP is 0 and its equality proves little; beside CocoMetric
both runs use ``PredictionDigest`` (prediction_digest.py, here on the tools'
PYTHONPATH): the count, score sum and score-weighted coordinate sum of the
predictions, a fingerprint of the teacher's outputs on these images.
"""
import copy
import glob
import json
import os
import os.path as osp
import re
from pathlib import Path
from typing import Sequence

import pytest
import torch
from mmengine.config import Config

from mmext.utils.checkpoint import load_checkpoint_file
from tests.tool_runner import ROOT, run_tool

DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'
PLAIN = 'configs/demo/pkd_retinanet_r18_plain.py'
TEACHER = 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py'
IMPORTS = ['mmext', 'prediction_digest']  # PredictionDigest, from this folder
ENV = dict(PYTHONPATH=os.pathsep.join(filter(None, [osp.dirname(osp.abspath(__file__)),
                                                    os.environ.get('PYTHONPATH')])))
LOADER = dict(batch_size=2, num_workers=0, persistent_workers=False)
TRAIN = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
         'train_cfg.max_iters=2', 'train_cfg.val_interval=1',  # two validations
         'default_hooks.checkpoint.interval=2']
DIGEST_KEYS = ('digest/boxes', 'digest/score_sum', 'digest/weighted_box_sum')


def _config(path: str, out: str, splits: Sequence[str] = ('val', 'test'),
            **changes) -> str:
    """``path`` with its first 4 val/test images, CocoMetric + PredictionDigest and
    ``changes`` (top-level keys), written to ``out`` (the demo configs have no
    validation)."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.update(LOADER)
    loader.dataset.indices = 4
    evaluator = [copy.deepcopy(cfg.test_evaluator), dict(type='PredictionDigest')]
    for split in splits:
        cfg[f'{split}_dataloader'] = copy.deepcopy(loader)
        cfg[f'{split}_evaluator'] = copy.deepcopy(evaluator)
    cfg.custom_imports = dict(imports=IMPORTS, allow_failed_imports=False)
    for key, value in changes.items():
        cfg[key] = value
    cfg.dump(out)
    return out


def _scalars(work_dir) -> list:
    """The json records of a run's metrics (full precision): ``<timestamp>.json``
    (in ``vis_data/`` for training, beside it for testing)."""
    files = glob.glob(osp.join(str(work_dir), '*', '**', '*.json'), recursive=True)
    return [json.loads(line) for f in sorted(files) if not f.endswith('scalars.json')
            for line in Path(f).read_text().splitlines() if line.strip()]


def _log(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def teacher_tested(tmp_path_factory, teacher_checkpoint):
    """tools/test.py of the teacher config + checkpoint on the 4 images: (the metrics
    of its log line as printed, its json record at full precision)."""
    work_dir = tmp_path_factory.mktemp('teacher_test')
    config = _config(TEACHER, str(work_dir / 'teacher_test.py'), ['test'])
    proc = run_tool(['tools/test.py', config, str(teacher_checkpoint),
                     '--work-dir', str(work_dir)], **ENV)
    assert proc.returncode == 0, _log(proc)[-4000:]
    line = next(l for l in _log(proc).splitlines() if 'Iter(test) [2/2]  ' in l)
    record = _scalars(work_dir)[-1]
    assert record['digest/boxes'] > 0  # the fingerprint is not trivial
    return dict(re.findall(r'(coco/\S+|digest/\S+): (-?[\d.]+)', line)), record


def _train(work_dir, teacher_checkpoint, processes: int = 1):
    """tools/train.py (or dist_train.sh) of the distiller with TeacherEvalValLoop,
    validating after each of its 2 iterations: (log, the teacher's logged metrics
    of each validation line, the json records holding them)."""
    config = _config(DISTILL, str(work_dir / 'distill_val.py'),
                     val_cfg=dict(type='TeacherEvalValLoop'))
    tool = ['tools/train.py', config] if processes == 1 else [
        'tools/dist_train.sh', config, str(processes)]
    proc = run_tool([*tool, '--work-dir', str(work_dir), '--cfg-options',
                     f'model.teacher.checkpoint={teacher_checkpoint}', *TRAIN],
                    PORT='29573', **ENV)
    log = _log(proc)
    assert proc.returncode == 0, log[-4000:]
    lines = [l for l in log.splitlines()  # the metric lines, not the progress ones
             if re.search(r'Iter\(val\) \[(\d+)/\1\]', l) and 'eta:' not in l]
    assert len(lines) == 2, log[-4000:]  # two validations, the teacher's metrics in both
    assert all('  digest/boxes: ' in l for l in lines)  # the student's own, beside
    logged = [dict(re.findall(r'(teacher/\S+): (-?[\d.]+)', l)) for l in lines]
    records = [r for r in _scalars(work_dir) if 'teacher/digest/boxes' in r]
    assert len(records) == 2
    return log, logged, records


def test_teacher_metrics_in_the_validation_log_equal_tools_test(
        tmp_path, teacher_checkpoint, teacher_tested):
    log, logged, records = _train(tmp_path, teacher_checkpoint)
    # evaluated once, logged at both validations
    assert log.count('TeacherEvalValLoop, the teacher (evaluated once):') == 1
    assert logged[0] == logged[1]
    first, second = ({k: v for k, v in r.items() if k.startswith('teacher/')}
                     for r in records)
    assert first == second
    tested, record = teacher_tested
    assert 'coco/bbox_mAP' in tested and len(tested) == 9
    assert logged[0] == {f'teacher/{k}': v for k, v in tested.items()}
    for key in DIGEST_KEYS:  # at full precision
        assert records[0][f'teacher/{key}'] == pytest.approx(record[key], rel=1e-9)


def test_dist_train_each_rank_evaluates_its_shard(tmp_path, teacher_checkpoint,
                                                  teacher_tested):
    log, logged, records = _train(tmp_path, teacher_checkpoint, processes=2)
    assert 'Distributed training: True' in log and 'Iter(val) [1/1]' in log
    record = teacher_tested[1]
    for key in DIGEST_KEYS:  # all 4 images, collected (other batches: float rounding)
        assert records[0][f'teacher/{key}'] == pytest.approx(record[key], rel=1e-6)


def _error_line(proc) -> str:
    assert proc.returncode == 2, _log(proc)[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'Iter(train)' not in _log(proc)  # before the first iteration
    return errors[0]


def test_a_model_without_teacher_is_refused(tmp_path):
    config = _config(PLAIN, str(tmp_path / 'plain_val.py'),
                     val_cfg=dict(type='TeacherEvalValLoop'))
    line = _error_line(run_tool(['tools/train.py', config, '--work-dir', str(tmp_path),
                                 '--cfg-options', *TRAIN], **ENV))
    assert "needs model.type='FeatureDistiller'" in line and 'RetinaNet' in line


def test_a_checkpoint_without_heads_is_refused(tmp_path, teacher_checkpoint):
    """(Raised when the loop is built, as the error above: before training.)"""
    from mmext.distill.teacher_val_loop import build_whole_teacher
    from mmext.utils.errors import UserError
    state = load_checkpoint_file(str(teacher_checkpoint))['state_dict']
    trunk_only = tmp_path / 'trunk_only.pth'
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if k.startswith(('backbone.', 'neck.'))}}, trunk_only)
    with pytest.raises(UserError) as error:
        build_whole_teacher(dict(config=osp.join(ROOT, TEACHER),
                                 checkpoint=str(trunk_only)))
    line = str(error.value)
    assert '\n' not in line and str(trunk_only) in line
    assert 'does not hold the whole teacher detector' in line
    assert 'missing (rpn_head.' in line and 'unexpected' not in line
