"""A PKD student (converted checkpoint of the distillation demo) exports like a plain
RetinaNet: the head outputs per level equal PyTorch's in onnxruntime, and the boxes
decoded from them equal ``model.predict`` on the demo images."""
import copy

import torch

from mmext.deploy import (detector_predict_from_outputs, load_model,
                          two_stage_predict_from_outputs, wrap_for_export)
from mmext.engine import load_config
from tests.tool_runner import load_tool

from .conftest import config_path, export_demo_batch

DISTILL = 'configs/demo/pkd_retinanet_r18_distill.py'


def _student_checkpoint(tmp_path):
    """A distillation checkpoint as training writes it (student keys + adapters),
    converted with tools/convert_distill_checkpoint.py."""
    torch.manual_seed(3)
    student = load_model(load_config(config_path('configs/demo/pkd_retinanet_r18_plain.py')),
                         'none')
    with torch.no_grad():  # not the seeded init: the checkpoint must really load
        for p in student.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = dict(student.state_dict())
    state['distill_adapters.0.weight'] = torch.zeros(128, 64, 1, 1)
    src, dst = tmp_path / 'distill.pth', tmp_path / 'student.pth'
    torch.save({'state_dict': state, 'meta': {}}, src)
    load_tool('tools/convert_distill_checkpoint.py').convert(str(src), str(dst))
    return str(dst), student


def test_pkd_student_exports_like_retinanet(tmp_path, lau_ext):
    # untrained-like weights score ~0.01 (focal prior): keep 30 detections per image
    cfg = load_config(config_path(DISTILL), {'model.student.test_cfg.score_thr': 0.0,
                                             'model.student.test_cfg.max_per_img': 30})
    path, trained = _student_checkpoint(tmp_path)
    model = load_model(cfg, path)  # FeatureDistiller config -> its student
    assert type(model).__name__ == 'RetinaNet'
    for (name, a), b in zip(model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name
    spec = wrap_for_export(model)
    assert spec.kind == 'detector' and spec.size_divisor == 32
    assert spec.output_names == [f'{k}_{i}' for k in ('cls_score', 'bbox_pred')
                                 for i in range(5)]
    data, outputs = export_demo_batch(model, spec, cfg.test_dataloader.dataset,
                                      str(tmp_path / 'retina.onnx'))
    inputs = data['inputs']
    # decoded boxes from onnxruntime's outputs == model.predict
    samples = copy.deepcopy(data['data_samples'])
    with torch.no_grad():
        ref = model.predict(inputs, data['data_samples'])
        got = detector_predict_from_outputs(model, outputs, samples)
    for a, b in zip(ref, got):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) == len(b) > 0
        torch.testing.assert_close(b.scores, a.scores, rtol=0, atol=1e-4)
        torch.testing.assert_close(b.bboxes, a.bboxes, rtol=0, atol=1e-2)
        assert torch.equal(b.labels, a.labels)


def test_two_stage_detector_exports_network_and_rpn(tmp_path):
    """The PKD demo teacher (Faster R-CNN): neck maps and RPN outputs equal PyTorch's
    in onnxruntime; the Python rest (proposals, RoI head) on the network outputs
    gives exactly ``model.predict``."""
    cfg = load_config(config_path('configs/demo/pkd_teacher_faster_rcnn_r18_demo.py'))
    torch.manual_seed(5)
    model = load_model(cfg, 'none')
    spec = wrap_for_export(model)
    levels = len(model.rpn_head.prior_generator.strides)
    assert spec.kind == 'two_stage'
    assert spec.output_names == [f'{k}_{i}' for k in ('feat', 'rpn_cls_score',
                                                      'rpn_bbox_pred')
                                 for i in range(levels)]
    data, outputs = export_demo_batch(model, spec, cfg.test_dataloader.dataset,
                                      str(tmp_path / 'faster_rcnn.onnx'))
    # onnxruntime's outputs equal PyTorch's (above, 1e-4); the post-processing is
    # compared on PyTorch's own outputs, where NMS ties cannot flip.
    with torch.no_grad():
        torch_outputs = dict(zip(spec.output_names, spec.module(data['inputs'])))
        ref = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    got = two_stage_predict_from_outputs(model, torch_outputs,
                                         copy.deepcopy(data['data_samples']))
    for a, b in zip(ref, got):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) == len(b) > 0
        assert torch.equal(b.bboxes, a.bboxes) and torch.equal(b.scores, a.scores)
        assert torch.equal(b.labels, a.labels)
    assert got[0].pred_instances.bboxes.shape[1] == 4
    assert len(outputs) == len(spec.output_names)
