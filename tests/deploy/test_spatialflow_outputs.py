"""SpatialFlow exports its dense part; the panoptic maps computed in Python from
onnxruntime's outputs equal ``model.predict`` exactly on the demo val images."""
import copy

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.dataset import pseudo_collate

from mmext.deploy import (export_onnx, load_model, spatialflow_predict_from_outputs,
                          wrap_for_export)
from mmext.engine import load_config

from .conftest import config_path, node_domains, run_session

DEMO = 'configs/demo/spatialflow_r18_demo.py'
NUM_THINGS = 3


def test_panoptic_from_onnxruntime_equals_predict(tmp_path):
    # Untrained weights: every detection kept (score_thr 0) and the fusion's
    # thresholds lowered, so the maps hold thing instances as well as stuff.
    cfg = load_config(config_path(DEMO), {
        'model.test_cfg.score_thr': 0.0, 'model.test_cfg.max_per_img': 30,
        'model.test_cfg.panoptic.score_thr': 0.0,
        'model.test_cfg.panoptic.stuff_area_limit': 16})
    model = load_model(cfg, 'none')
    spec = wrap_for_export(model)
    assert spec.kind == 'spatialflow'
    assert spec.output_names[-4:] == ['stuff_logits', 'mask_feat_0', 'mask_feat_1',
                                      'mask_feat_2']
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(2)]), False)
    inputs = data['inputs']
    path = export_onnx(spec.module, inputs, str(tmp_path / 'spatialflow.onnx'),
                       spec.output_names, size_divisor=spec.size_divisor)
    assert node_domains(path) <= {'', 'ai.onnx'}
    outputs = run_session(path, inputs)
    with torch.no_grad():
        expected = spec.module(inputs)
    for name, ref in zip(spec.output_names, expected):
        np.testing.assert_allclose(outputs[name], ref.numpy(), rtol=0, atol=1e-4,
                                   err_msg=name)
    samples = copy.deepcopy(data['data_samples'])
    with torch.no_grad():
        ref = model.predict(inputs, data['data_samples'])
    got = spatialflow_predict_from_outputs(model, outputs, samples)
    for a, b in zip(ref, got):
        pan_ref, pan = a.pred_panoptic_seg.sem_seg, b.pred_panoptic_seg.sem_seg
        assert pan.shape == pan_ref.shape == (1, *a.ori_shape)
        # meaningful: thing instances and stuff are both present
        labels = pan_ref % INSTANCE_OFFSET
        assert (labels < NUM_THINGS).any() and (labels >= NUM_THINGS).any()
        assert torch.equal(pan, pan_ref)
