"""Shared fixtures."""
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT


@pytest.fixture(autouse=True)
def fresh_default_scope():
    """Start every test without an mmengine default scope, as a new process would.

    mmengine builds from the registry of the *current* default scope: a test that
    set 'mmdet' would make a later mmseg build look in mmdet's registries.
    """
    from mmengine.registry import DefaultScope
    # Private, no public form: DefaultScope (a ManagerMixin) can create and read
    # instances (get_instance, get_current_instance) but never drop one, and its
    # overwrite_default_scope(None) leaves the current scope as it is.
    DefaultScope._instance_dict.clear()
    yield


@pytest.fixture(scope='module')
def one_torch_thread():
    """One intra-op thread for a module of tiny-model tests (the swap matrices): on
    maps of a few pixels thread hand-offs cost more than they give, and many times
    more on a shared, loaded machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def teacher_checkpoint(tmp_path_factory) -> str:
    """An untrained (seeded) checkpoint of the whole PKD demo teacher, heads included
    (the demo's trained one is not in a clone)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmext  # noqa: F401
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    config = osp.join(ROOT, 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py')
    teacher = MODELS.build(Config.fromfile(config).model)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
    return str(path)
