"""Shared helpers of the deployment tests: models from configs, export + onnxruntime."""
import os.path as osp
from typing import Dict, List

import numpy as np
import onnx
import pytest
import torch

from mmext.deploy import run_onnxruntime
from tests.tool_runner import ROOT


def config_path(rel: str) -> str:
    return osp.join(ROOT, rel)


def run_session(path: str, inputs: torch.Tensor) -> Dict[str, np.ndarray]:
    """``mmext.deploy.run_onnxruntime``, keyed by the file's output names."""
    names = [o.name for o in onnx.load(path).graph.output]
    return dict(zip(names, run_onnxruntime(path, inputs)))


def node_domains(path: str) -> set:
    model = onnx.load(path)
    return {n.domain for n in model.graph.node}


def op_types(path: str) -> List[str]:
    return [n.op_type for n in onnx.load(path).graph.node]


def export_demo_batch(model, spec, dataset_cfg, path: str, num_images: int = 2):
    """Export ``spec`` on the first demo images (preprocessed as the model does),
    check the graph holds only standard ops and that onnxruntime's outputs equal
    PyTorch's: (preprocessed data, {output name: array})."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    from mmext.deploy import export_onnx
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(num_images)]), False)
    export_onnx(spec.module, data['inputs'], path, spec.output_names,
                size_divisor=spec.size_divisor)
    assert node_domains(path) <= {'', 'ai.onnx'}
    outputs = run_session(path, data['inputs'])
    with torch.no_grad():
        expected = spec.module(data['inputs'])
    for name, ref in zip(spec.output_names, expected):
        np.testing.assert_allclose(outputs[name], ref.numpy(), rtol=0, atol=1e-4,
                                   err_msg=name)
    return data, outputs


@pytest.fixture
def lau_ext():
    from mmext.ops import _extension
    assert _extension.load_extension(), _extension.extension_state().error
    return True
