"""Run an exported file in onnxruntime and compare it with PyTorch."""
import importlib
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

from mmext.utils.errors import UserError

_INSTALL_HINT = ("install mmext's deploy extra: pip install -e '.[deploy,upstream]' "
                 "(or '.[deploy,onedl]'), as tools/install.sh does")


def require_module(name: str, purpose: str):
    """Import ``name`` or raise a :class:`UserError` saying how to install it."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f'{purpose} needs the Python package {name!r}, which cannot be '
                        f'imported ({exc}); {_INSTALL_HINT}') from exc
    if module is None:  # sys.modules[name] = None also blocks an import
        raise UserError(f'{purpose} needs {name!r}; {_INSTALL_HINT}')
    return module


def run_onnxruntime(path: str, inputs: Tensor) -> List[np.ndarray]:
    """Outputs of ``path`` for ``inputs`` (N, 3, H, W), in the file's output order,
    on onnxruntime's CPU execution provider."""
    ort = require_module('onnxruntime', 'running the exported model')
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return session.run(None, {name: inputs.detach().cpu().numpy()})


def compare_outputs(torch_outputs: Sequence[Tensor], ort_outputs: Sequence[np.ndarray],
                    names: Sequence[str]) -> Dict[str, float]:
    """Max abs difference per output name (shapes must agree).

    Raises:
        RuntimeError: a count or shape mismatch (the exported graph is wrong).
    """
    if len(torch_outputs) != len(ort_outputs):
        raise RuntimeError(f'PyTorch gives {len(torch_outputs)} outputs, onnxruntime '
                           f'{len(ort_outputs)}')
    diffs = {}
    for name, ref, got in zip(names, torch_outputs, ort_outputs):
        ref = ref.detach().cpu().numpy()
        if ref.shape != got.shape:
            raise RuntimeError(f'output {name}: PyTorch shape {ref.shape}, '
                               f'onnxruntime shape {got.shape}')
        diffs[name] = float(np.abs(ref.astype(np.float64) - got).max()) if ref.size else 0.0
    return diffs


def torch_outputs(module: torch.nn.Module, inputs: Tensor) -> List[Tensor]:
    with torch.no_grad():
        return list(module(inputs))
