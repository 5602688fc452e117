"""Shared helpers of the deployment tests: models from configs, export + onnxruntime."""
import os.path as osp
from typing import Dict, List

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests.tool_runner import ROOT


def config_path(rel: str) -> str:
    return osp.join(ROOT, rel)


def run_session(path: str, inputs: torch.Tensor) -> Dict[str, np.ndarray]:
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {'inputs': inputs.numpy()})))


def node_domains(path: str) -> set:
    model = onnx.load(path)
    return {n.domain for n in model.graph.node}


def op_types(path: str) -> List[str]:
    return [n.op_type for n in onnx.load(path).graph.node]


@pytest.fixture
def lau_ext():
    from mmext.ops import _extension
    assert _extension.load_extension(), _extension.extension_state().error
    return True
