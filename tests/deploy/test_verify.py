"""compare_outputs and the dependency check."""
import sys

import numpy as np
import pytest
import torch

from mmext.deploy import compare_outputs
from mmext.deploy.verify import require_module
from mmext.utils.errors import UserError


def test_compare_outputs_reports_max_abs_diff_per_output():
    ref = [torch.zeros(2, 3), torch.ones(4)]
    got = [np.full((2, 3), 0.5, np.float32), np.array([1, 1, 1, 3], np.float32)]
    assert compare_outputs(ref, got, ['a', 'b']) == {'a': 0.5, 'b': 2.0}
    with pytest.raises(RuntimeError, match='shape'):
        compare_outputs(ref, [got[0], np.zeros(3)], ['a', 'b'])
    with pytest.raises(RuntimeError, match='outputs'):
        compare_outputs(ref, got[:1], ['a', 'b'])


def test_missing_package_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(UserError, match=r"'onnxruntime'.*deploy"):
        require_module('onnxruntime', '--verify')
    assert require_module('numpy', 'x') is np
