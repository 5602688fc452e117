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
