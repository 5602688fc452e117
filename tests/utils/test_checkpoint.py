"""mmengine checkpoints load under torch's weights_only=True, and only safe types do."""
import io
import os
import pickle

import numpy as np
import pytest
import torch

from mmext.utils.checkpoint import register_checkpoint_safe_globals


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_mmengine_objects_load_with_weights_only():
    from mmengine.logging import HistoryBuffer, MessageHub
    register_checkpoint_safe_globals()
    hub = MessageHub.get_instance('mmext-test-ckpt')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/acc', np.float32(0.25))
    hub.update_info('iter', 7)
    state = dict(
        message_hub=hub.state_dict(),
        meta=dict(seed=np.int64(3), ratio=np.float64(0.5),
                  arr=np.arange(4, dtype=np.float32)),
        state_dict={'w': torch.ones(2)})
    loaded = _roundtrip(state)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == pytest.approx(0.5)
    assert loaded['meta']['seed'] == 3
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(4))


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_unsafe_globals_still_rejected():
    register_checkpoint_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        _roundtrip({'x': _Evil()})


class _GetattrEscape:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistic method."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_is_restricted_to_history_buffer_statistics():
    register_checkpoint_safe_globals()
    with pytest.raises(pickle.UnpicklingError, match='statistic methods'):
        _roundtrip({'x': _GetattrEscape()})


def test_fresh_process_loads_history_buffer(tmp_path):
    """A new process has created no HistoryBuffer yet (its method table is empty)."""
    import subprocess
    import sys
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('mmext-test-fresh')
    hub.update_scalar('train/loss', 1.5)
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': hub.state_dict()}, path)
    code = ('import torch, mmext; '
            f'hub = torch.load({str(path)!r})["message_hub"]; '
            'print(hub["log_scalars"]["train/loss"].current())')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('1.5')


def test_loads_after_a_safe_globals_context_removed_ours(tmp_path):
    """torch's ``safe_globals`` context removes its globals on exit, ours included
    (OneDL's mmengine wraps every checkpoint load in one, with HistoryBuffer): our
    loader must still read an mmengine checkpoint afterwards."""
    from mmengine.logging import HistoryBuffer, MessageHub

    from mmext.utils.checkpoint import load_checkpoint_file
    if not hasattr(torch.serialization, 'safe_globals'):
        pytest.skip('torch < 2.5 has no safe_globals context')
    register_checkpoint_safe_globals()
    with torch.serialization.safe_globals([HistoryBuffer]):
        pass
    assert HistoryBuffer not in torch.serialization.get_safe_globals()  # the trap
    hub = MessageHub.get_instance('mmext-test-ckpt-context')
    hub.update_scalar('train/loss', 0.5)
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(seed=np.int64(3))), path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5
