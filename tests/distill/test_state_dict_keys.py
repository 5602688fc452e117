"""The student-key hooks on a small module, through torch's public hooks and through
the private fallback that torch 2.1-2.4 need."""
import subprocess
import sys

import torch
from torch import nn

from mmext.distill.state_dict_keys import plain_student_state, register_key_hooks


class _Tiny(nn.Module):
    """``student`` and ``adapters`` as FeatureDistiller has them."""

    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
        self.adapters = nn.ModuleDict({'fpn0': nn.Conv2d(2, 3, 1)})
        register_key_hooks(self)


class _OldTorch(_Tiny):
    """Hides the public hook registration, as torch < 2.5 lacks it."""

    def __getattribute__(self, name):
        if name in ('register_state_dict_post_hook', 'register_load_state_dict_pre_hook'):
            raise AttributeError(name)
        return super().__getattribute__(name)


STUDENT_KEYS = {'0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean',
                '1.running_var', '1.num_batches_tracked'}
ADAPTER_KEYS = {'distill_adapters.fpn0.weight', 'distill_adapters.fpn0.bias'}


def test_saved_under_student_names_and_loaded_back():
    assert hasattr(nn.Module, 'register_state_dict_post_hook')  # the public path
    _check(_Tiny)


def test_private_hooks_of_torch_before_2_5_do_the_same():
    # A fresh process: torch refuses one function registered through both APIs.
    code = (f'import runpy; ns = runpy.run_path({__file__!r}); '
            "assert not hasattr(ns['_OldTorch'](), 'register_state_dict_post_hook'); "
            "ns['_check'](ns['_OldTorch']); print('checked')")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and 'checked' in proc.stdout, proc.stderr[-3000:]


def _check(cls) -> None:
    torch.manual_seed(0)
    model = cls()
    state = model.state_dict()
    assert set(state) == STUDENT_KEYS | ADAPTER_KEYS
    assert torch.equal(state['distill_adapters.fpn0.weight'], model.adapters.fpn0.weight)
    # torch keeps module versions only in the private _metadata (see the hook)
    assert state._metadata['1']['version'] == 2  # BN's version follows its key
    other = cls()
    result = other.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(other.student[0].weight, model.student[0].weight)
    assert torch.equal(other.adapters.fpn0.weight, model.adapters.fpn0.weight)
    # a plain student checkpoint loads too (the adapters keep their weights)
    plain = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    result = other.load_state_dict(plain.state_dict(), strict=False)
    assert result.missing_keys == ['adapters.fpn0.weight', 'adapters.fpn0.bias']
    assert torch.equal(other.student[0].weight, plain[0].weight)
    assert set(plain_student_state(state)) == STUDENT_KEYS
