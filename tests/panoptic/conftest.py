"""Panoptic tests build mmdet models: give each test mmdet's default scope."""
import pytest


@pytest.fixture(autouse=True)
def mmdet_scope(fresh_default_scope):
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    yield
