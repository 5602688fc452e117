"""SpatialFlow exports its dense part; the panoptic maps computed in Python from
onnxruntime's outputs equal ``model.predict`` exactly on the demo val images."""
import copy

import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from mmext.deploy import load_model, spatialflow_predict_from_outputs, wrap_for_export
from mmext.engine import load_config

from .conftest import config_path, export_demo_batch

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
    data, outputs = export_demo_batch(model, spec, cfg.val_dataloader.dataset,
                                      str(tmp_path / 'spatialflow.onnx'))
    inputs = data['inputs']
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
