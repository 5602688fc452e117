"""Configs inherited through 'mmext::' build and train (the 'mmext' registry scope)."""
import glob
import json
import math
import os.path as osp
import sys

import pytest

import mmext  # noqa: F401
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, TRANSFORMS, init_default_scope

from tests.tool_runner import ROOT, run_tool

# One inherited demo config per kind of model mmext ships.
KINDS = {
    'detection': ('retinanet_r18_demo', 'mmdet'),
    'segmentation': ('seg_lau_demo', 'mmseg'),
    'panoptic': ('spatialflow_r18_demo', 'mmdet'),
    'pkd': ('pkd_retinanet_r18_distill', 'mmdet'),
}


def _user_config(folder, kind: str, teacher: str, short: bool = False) -> str:
    """A user's config file inheriting the mmext demo config of ``kind``."""
    lines = [f"_base_ = 'mmext::demo/{KINDS[kind][0]}.py'"]
    if kind == 'pkd':
        lines.append(f'model = dict(teacher=dict(checkpoint={teacher!r}))')
    if short:  # what a user trying a config for two iterations writes
        lines += ["train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)",
                  'val_cfg = None', 'val_dataloader = None', 'val_evaluator = None',
                  'default_hooks = dict(logger=dict(interval=1), '
                  "checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))"]
    path = osp.join(str(folder), f'my_{kind}.py')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_inherited_config_builds_model_and_data(kind, tmp_path, teacher_checkpoint):
    cfg = Config.fromfile(_user_config(tmp_path, kind, teacher_checkpoint))
    dataset_cfg = cfg.train_dataloader.dataset
    # The path under test: mmengine tagged what the mmext config defines.
    assert dataset_cfg._scope_ == 'mmext'
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(dataset_cfg)
    assert type(dataset).__name__.startswith('Demo') and len(dataset) > 0
    loader = type(dataset.pipeline.transforms[1])
    assert loader.__module__.split('.')[0] == KINDS[kind][1]  # mmdet's / mmseg's LoadAnnotations
    if kind != 'pkd':  # the distiller is built (teacher and all) in the training test
        model = MODELS.build(cfg.model)
        assert type(model.backbone).__module__.split('.')[0] == KINDS[kind][1]


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_names_both_tasks_define_resolve_in_the_task_scope(scope):
    import importlib
    expected = importlib.import_module(f'{scope}.datasets.transforms').LoadAnnotations
    init_default_scope(scope)
    with TRANSFORMS.switch_scope_and_registry('mmext') as registry:
        assert registry.scope == 'mmext'
        assert registry.get('LoadAnnotations') is expected


def _backbone(scope):
    import importlib
    return importlib.import_module(f'{scope}.models.backbones').ResNet


@pytest.mark.parametrize('outer,inner', [('mmdet', 'mmseg'), ('mmseg', 'mmdet')])
def test_two_task_scopes_resolve_in_the_innermost(outer, inner):
    """With two task scopes set one after the other (or nested), an inherited
    'mmext' name that both tasks define means the innermost (current) one's."""
    from mmengine.registry import DefaultScope
    assert _backbone('mmdet') is not _backbone('mmseg')
    saved = DefaultScope._instance_dict.copy()  # private: no public way to drop scopes
    try:
        init_default_scope(outer)
        init_default_scope(inner)
        assert DefaultScope.get_current_instance().scope_name == inner
        with MODELS.switch_scope_and_registry('mmext') as registry:
            assert registry.get('ResNet') is _backbone(inner)
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)
    with DefaultScope.overwrite_default_scope(outer):
        with DefaultScope.overwrite_default_scope(inner):
            with MODELS.switch_scope_and_registry('mmext') as registry:
                assert registry.get('ResNet') is _backbone(inner)
        with MODELS.switch_scope_and_registry('mmext') as registry:
            assert registry.get('ResNet') is _backbone(outer)


def test_ambiguous_name_without_a_task_scope_is_a_clear_error():
    with TRANSFORMS.switch_scope_and_registry('mmext') as registry:
        with pytest.raises(KeyError, match="default_scope"):
            registry.get('LoadAnnotations')
        # a name only one task defines needs no scope
        assert registry.get('PackSegInputs').__module__.startswith('mmseg')
        assert registry.get('DemoCocoDataset') is None  # a dataset, not a transform


def _check_trained(work_dir: str, proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert osp.exists(osp.join(work_dir, 'iter_2.pth')), proc.stderr[-3000:]
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for line in open(logs[0])]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_inherited_config_trains_with_mmext_tools(kind, tmp_path, teacher_checkpoint):
    cfg = _user_config(tmp_path, kind, teacher_checkpoint, short=True)
    work_dir = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work_dir])
    _check_trained(work_dir, proc)


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_inherited_config_trains_with_upstream_train_py(kind, tmp_path, teacher_checkpoint):
    """mmdet's / mmseg's own tools/train.py, with the opt-in start-up hook enabled."""
    from mmext import config_scope
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    config_scope.enable(str(site_dir))
    package = __import__(KINDS[kind][1])
    train_py = osp.join(osp.dirname(package.__file__), '.mim', 'tools', 'train.py')
    if not osp.exists(train_py):
        pytest.fail(f'{KINDS[kind][1]} ships no .mim/tools/train.py at {train_py}')
    cfg = _user_config(tmp_path, kind, teacher_checkpoint, short=True)
    work_dir = str(tmp_path / 'work')
    # site.addsitedir processes the .pth exactly as start-up does for site-packages;
    # then the upstream script runs unchanged as __main__.
    code = ('import runpy, site, sys; '
            f'site.addsitedir({str(site_dir)!r}); '
            f'sys.argv = [{train_py!r}, {cfg!r}, "--work-dir", {work_dir!r}]; '
            f'runpy.run_path({train_py!r}, run_name="__main__")')
    proc = run_tool([sys.executable, '-c', code])
    _check_trained(work_dir, proc)
