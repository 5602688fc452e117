"""tools/convert_distill_checkpoint.py on a real FeatureDistiller state dict (the demo
distill config's model): the result is exactly the plain student's."""
import os.path as osp

import torch
from mmengine.config import Config

import mmext  # noqa: F401  (registers FeatureDistiller / PKDLoss)
from tests.tool_runner import ROOT, load_tool

DISTILL = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_distill.py')
PLAIN = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_plain.py')


def _tool():
    return load_tool('tools/convert_distill_checkpoint.py')


def test_converted_distiller_checkpoint_loads_into_the_plain_student(tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(DISTILL).model
    cfg.teacher.checkpoint, cfg.teacher.random_init = None, True  # no trained teacher needed
    torch.manual_seed(0)
    distiller = MODELS.build(cfg)
    state = distiller.state_dict()
    assert any(k.startswith('distill_adapters.') for k in state)  # something to drop
    src, dst = tmp_path / 'iter_2.pth', tmp_path / 'student.pth'
    torch.save(dict(meta=dict(iter=2), state_dict=state,
                    optimizer=dict(state={}, param_groups=[])), src)

    count = _tool().convert(str(src), str(dst))

    converted = torch.load(dst, map_location='cpu')
    assert set(converted) == {'meta', 'state_dict'}  # training state dropped
    assert converted['meta'] == dict(iter=2, converted_from=str(src))
    plain = MODELS.build(Config.fromfile(PLAIN).model)
    result = plain.load_state_dict(converted['state_dict'], strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert count == len(plain.state_dict())
    for key, value in plain.state_dict().items():  # the distiller's student weights
        assert torch.equal(value, state[key]), key
