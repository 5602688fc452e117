"""Bad files give one 'mmext: error:' line naming the file and the reason (exit 2),
and nothing runs: checkpoints (truncated, not a checkpoint, a pickle that would run
os.system) in tools/test.py, --resume, the PKD teacher and the converters; corrupt
COCO annotation files (invalid JSON, missing image, negative box size)."""
import glob
import json
import os
import os.path as osp
import re
import shutil

import pytest
import torch
from PIL import Image

from mmext.utils.checkpoint import load_checkpoint_file
from mmext.utils.errors import UserError
from tests.tool_runner import ROOT, run_tool

DET = 'configs/demo/retinanet_r18_demo.py'
PANOPTIC = 'configs/demo/spatialflow_r18_demo.py'
DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'

# What the one-line error says for each kind of bad checkpoint.
REASONS = {
    'malicious': 'holds a disallowed object (posix.system)',
    'truncated': 'is truncated or corrupt',
    'text': 'is not a checkpoint',
}


class _RunsACommand:
    """Unpickling this calls os.system(command): what a malicious checkpoint does."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


@pytest.fixture
def bad(tmp_path):
    """Paths of the bad checkpoints, and of the marker the malicious one would
    create if anything unpickled it without weights_only."""
    marker = tmp_path / 'pwned'
    paths = {}
    paths['malicious'] = tmp_path / 'malicious.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'x': _RunsACommand(f'touch {marker}')}}, paths['malicious'])
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, good)
    data = good.read_bytes()
    paths['truncated'] = tmp_path / 'truncated.pth'
    paths['truncated'].write_bytes(data[:len(data) // 2])  # an interrupted copy
    paths['text'] = tmp_path / 'notes.pth'
    paths['text'].write_text('these are my notes, not a checkpoint\n')
    return paths, marker


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert 'Iter(' not in proc.stdout + proc.stderr  # no training/testing iteration
    return errors[0]


def _check(proc, path, kind, marker) -> str:
    line = _one_error_line(proc)
    assert f"'{path}'" in line and REASONS[kind] in line
    assert not marker.exists()  # the pickled os.system never ran
    return line


# ---------------------------------------------------------------- the shared loader

@pytest.mark.parametrize('kind', sorted(REASONS))
def test_loader_names_file_and_reason(bad, kind):
    paths, marker = bad
    with pytest.raises(UserError) as info:
        load_checkpoint_file(str(paths[kind]), 'checkpoint')
    message = str(info.value)
    assert message.startswith(f"checkpoint '{paths[kind]}' {REASONS[kind]}")
    assert '\n' not in message
    assert not marker.exists()


def test_loader_other_bad_kinds(tmp_path):
    import pickle
    marker = tmp_path / 'pwned'
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    plain = tmp_path / 'plain.pkl'  # a bare pickle (not torch.save) with a payload
    plain.write_bytes(pickle.dumps({'x': _RunsACommand(f'touch {marker}')}))
    legacy = tmp_path / 'legacy.pth'  # torch's pre-1.6 (non-zip) format
    torch.save({'x': _RunsACommand(f'touch {marker}')}, legacy,
               _use_new_zipfile_serialization=False)
    cases = [(empty, 'is empty (0 bytes)'), (plain, 'refused it'),
             (legacy, 'disallowed object (posix.system)'),
             (tmp_path / 'absent.pth', 'does not exist')]
    for path, reason in cases:
        with pytest.raises(UserError, match=re.escape(reason)):
            load_checkpoint_file(str(path), 'teacher checkpoint')
    assert not marker.exists()


def test_loader_reads_a_good_checkpoint(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(3.)}}, path)
    for mmap in (False, True):
        loaded = load_checkpoint_file(str(path), mmap=mmap)
        assert loaded['state_dict']['w'].tolist() == [0., 1., 2.]


def test_refused_hint_only_for_refused_objects(bad):
    paths, _ = bad
    hint = ' (rerun with --trust-checkpoint)'
    with pytest.raises(UserError, match='trust-checkpoint'):
        load_checkpoint_file(str(paths['malicious']), refused_hint=hint)
    with pytest.raises(UserError) as info:
        load_checkpoint_file(str(paths['truncated']), refused_hint=hint)
    assert 'trust-checkpoint' not in str(info.value)


# ---------------------------------------------------------------- through the tools

@pytest.mark.parametrize('kind', sorted(REASONS))
def test_test_tool(bad, kind, tmp_path):
    paths, marker = bad
    work_dir = tmp_path / 'work'
    _check(run_tool(['tools/test.py', DET, str(paths[kind]), '--work-dir',
                     str(work_dir)]), paths[kind], kind, marker)
    assert not work_dir.exists()  # refused before the Runner was built


@pytest.mark.parametrize('kind', ['malicious', 'truncated'])
def test_resume(bad, kind, tmp_path):
    paths, marker = bad
    work_dir = tmp_path / 'work'
    line = _check(run_tool(['tools/train.py', DET, '--resume', str(paths[kind]),
                            '--work-dir', str(work_dir)]), paths[kind], kind, marker)
    assert line.startswith("mmext: error: --resume '")
    assert not glob.glob(str(work_dir / '*.pth'))


def test_resume_auto_checks_the_last_checkpoint(bad, tmp_path):
    """Plain --resume: the file named by <work_dir>/last_checkpoint is checked."""
    paths, marker = bad
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(str(paths['malicious']))
    _check(run_tool(['tools/train.py', DET, '--resume', '--work-dir', str(work_dir)]),
           paths['malicious'], 'malicious', marker)
    assert sorted(os.listdir(work_dir)) == ['last_checkpoint']


@pytest.mark.parametrize('kind', ['malicious', 'text'])
def test_teacher_checkpoint(bad, kind, tmp_path):
    paths, marker = bad
    work_dir = tmp_path / 'work'
    line = _check(run_tool(['tools/train.py', DISTILL, '--work-dir', str(work_dir),
                            '--cfg-options',
                            f'model.teacher.checkpoint={paths[kind]}']),
                  paths[kind], kind, marker)
    assert 'teacher checkpoint' in line
    assert not glob.glob(str(work_dir / '*.pth'))


def test_teacher_loader_in_the_model_too(bad):
    """Built without the tools (e.g. from Python), the teacher uses the same loader."""
    from mmext.distill.teacher import read_state_dict
    paths, marker = bad
    with pytest.raises(UserError, match=re.escape(REASONS['malicious'])):
        read_state_dict(str(paths['malicious']))
    assert not marker.exists()


@pytest.mark.parametrize('kind', ['malicious', 'truncated'])
def test_convert_distill_checkpoint(bad, kind, tmp_path):
    paths, marker = bad
    dst = tmp_path / 'student.pth'
    _check(run_tool(['tools/convert_distill_checkpoint.py', str(paths[kind]), str(dst)]),
           paths[kind], kind, marker)
    assert not dst.exists()


@pytest.mark.parametrize('kind', ['malicious', 'text'])
def test_spatialflow_official_converter(bad, kind, tmp_path):
    paths, marker = bad
    dst = tmp_path / 'converted.pth'
    line = _check(run_tool(['tools/model_converters/spatialflow_official_to_mmext.py',
                            PANOPTIC, str(paths[kind]), str(dst)]),
                  paths[kind], kind, marker)
    # Only a refused object can be loaded anyway, from a trusted file.
    assert ('--trust-checkpoint' in line) == (kind == 'malicious')
    assert not dst.exists()


# ------------------------------------------------------- COCO annotation files

def _coco_dataset(root, panoptic=False):
    """Two 32x32 images and a valid COCO (detection or panoptic) annotation file."""
    (root / 'images').mkdir(parents=True)
    for index in (1, 2):
        Image.new('RGB', (32, 32)).save(root / 'images' / f'{index}.png')
    images = [dict(id=i, file_name=f'{i}.png', width=32, height=32) for i in (1, 2)]
    categories = [dict(id=1, name='circle', isthing=1), dict(id=2, name='sky', isthing=0)]
    if panoptic:
        (root / 'panoptic').mkdir()
        for index in (1, 2):
            Image.new('RGB', (32, 32)).save(root / 'panoptic' / f'{index}.png')
        annotations = [dict(image_id=i, file_name=f'{i}.png', segments_info=[
            dict(id=1, category_id=1, bbox=[2, 2, 8, 8], area=64, iscrowd=0)])
            for i in (1, 2)]
    else:
        annotations = [dict(id=10 + i, image_id=i, category_id=1, bbox=[2, 2, 8, 8],
                            area=64, iscrowd=0) for i in (1, 2)]
    data = dict(images=images, annotations=annotations, categories=categories)
    (root / 'ann.json').write_text(json.dumps(data))
    return data


def _write(root, data):
    (root / 'ann.json').write_text(json.dumps(data))


def _user_config(tmp_path, root):
    """The RetinaNet demo config on a user's COCO-format dataset at ``root``."""
    cfg = tmp_path / 'user_coco.py'
    dataset = (f"dict(type='CocoDataset', data_root='{root}/', ann_file='ann.json', "
               "data_prefix=dict(img='images/'), metainfo=dict(classes=('circle', )))")
    cfg.write_text(f"_base_ = '{osp.join(ROOT, DET)}'\n"
                   f'train_dataloader = dict(dataset={dataset})\n'
                   f'val_dataloader = dict(dataset={dataset})\n'
                   f'test_dataloader = dict(dataset={dataset})\n'
                   f"val_evaluator = dict(ann_file='{root}/ann.json')\n"
                   'test_evaluator = val_evaluator\n')
    return cfg


def _corrupt(kind, root, data):
    """Break the annotation file at ``root`` the ``kind`` way; return what the
    error line must name besides the file."""
    if kind == 'invalid json':
        (root / 'ann.json').write_text(json.dumps(data)[:-20])  # cut short
        return 'is not valid JSON'
    if kind == 'missing image':
        os.remove(root / 'images' / '2.png')
        return "image id 2 ('2.png')"
    if kind == 'negative width':
        data['annotations'][1]['bbox'] = [20, 2, -8, 8]
        _write(root, data)
        return 'annotation id 12 (image id 2): bbox [20, 2, -8, 8] has a negative width'
    raise ValueError(kind)


KINDS = ['invalid json', 'missing image', 'negative width']


@pytest.mark.parametrize('kind', KINDS)
def test_train_refuses_a_corrupt_annotation_file(tmp_path, kind):
    root = tmp_path / 'coco'
    entry = _corrupt(kind, root, _coco_dataset(root))
    work_dir = tmp_path / 'work'
    line = _one_error_line(run_tool(['tools/train.py', str(_user_config(tmp_path, root)),
                                     '--work-dir', str(work_dir)]))
    assert f"annotation file '{root}/ann.json'" in line and entry in line
    assert line.startswith('mmext: error: train_dataloader: ')
    assert not work_dir.exists()  # before the Runner (and its work dir) existed


def test_test_tool_refuses_a_corrupt_annotation_file(tmp_path):
    root = tmp_path / 'coco'
    entry = _corrupt('negative width', root, _coco_dataset(root))
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': {}}, checkpoint)
    line = _one_error_line(run_tool(['tools/test.py', str(_user_config(tmp_path, root)),
                                     str(checkpoint), '--work-dir', str(tmp_path / 'w')]))
    assert line.startswith('mmext: error: test_dataloader: ') and entry in line


def _check_coco(root, **dirs):
    from mmext.engine.preflight import check_coco_annotations
    check_coco_annotations(str(root / 'ann.json'), 'train_dataloader', **dirs)


def test_valid_files_and_zero_size_boxes_pass(tmp_path):
    root = tmp_path / 'coco'
    data = _coco_dataset(root)
    _check_coco(root, img_dir=str(root / 'images'))
    # mmdet skips boxes of zero width/height, and COCO train2017 has two: allowed.
    data['annotations'][0]['bbox'] = [2, 2, 1.03, 0.0]
    _write(root, data)
    _check_coco(root, img_dir=str(root / 'images'))


@pytest.mark.parametrize('change,expected', [
    (lambda d: d['images'][0].pop('file_name'), r'images\[0\] has no file_name'),
    (lambda d: d['annotations'][0].update(bbox=[1, 2, 3]),
     r"annotation id 11 \(image id 1\): bbox \[1, 2, 3\] is not"),
    (lambda d: d['annotations'][0].update(category_id=7),
     'annotation id 11 .*category_id 7 is not in categories'),
])
def test_other_broken_entries(tmp_path, change, expected):
    root = tmp_path / 'coco'
    data = _coco_dataset(root)
    change(data)
    _write(root, data)
    with pytest.raises(UserError, match=expected):
        _check_coco(root)


def test_panoptic_entries(tmp_path):
    root = tmp_path / 'coco'
    data = _coco_dataset(root, panoptic=True)
    dirs = dict(img_dir=str(root / 'images'), seg_dir=str(root / 'panoptic'))
    _check_coco(root, **dirs)
    os.remove(root / 'panoptic' / '1.png')
    with pytest.raises(UserError, match=r"panoptic PNG of image id 1: '.*1\.png' does "
                       'not exist'):
        _check_coco(root, **dirs)
    shutil.copy(root / 'panoptic' / '2.png', root / 'panoptic' / '1.png')
    data['annotations'][1]['segments_info'][0]['bbox'] = [0, 0, 4, -1]
    _write(root, data)
    with pytest.raises(UserError, match='annotation of image id 2, segment id 1: '
                       'bbox .* negative'):
        _check_coco(root, **dirs)


def test_image_paths_checked_only_where_mmdets_parser_builds_them():
    """Cityscapes panoptic keeps images in per-city folders (its own parser): its
    image paths are left to the dataset; mmdet's COCO classes get them checked."""
    from mmdet.datasets import CocoDataset, CocoPanopticDataset

    from mmext.datasets import CityscapesPanopticDataset
    from mmext.engine.preflight import _coco_paths
    assert _coco_paths(CocoDataset) == (True, False)
    assert _coco_paths(CocoPanopticDataset) == (True, True)
    assert _coco_paths(CityscapesPanopticDataset) == (False, False)
    assert _coco_paths(None) == (False, False)


def test_only_rank_zero_parses(tmp_path, monkeypatch):
    """Every rank runs the pre-flight; only rank 0 parses the (large) JSON files."""
    from mmengine.config import Config

    from mmext.engine.preflight import check_annotation_files
    root = tmp_path / 'coco'
    _corrupt('invalid json', root, _coco_dataset(root))
    cfg = Config.fromfile(str(_user_config(tmp_path, root)))
    monkeypatch.setenv('RANK', '1')
    check_annotation_files(cfg, 'train')  # rank 1: not parsed, no error
    monkeypatch.setenv('RANK', '0')
    with pytest.raises(UserError, match='not valid JSON'):
        check_annotation_files(cfg, 'train')
