"""tools/convert_distill_checkpoint.py on a real FeatureDistiller state dict (the demo
distill config's model) and on MMRazor's layout of the demo pair: the result is
exactly the plain student's, loaded strictly."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

import mmext  # noqa: F401  (registers FeatureDistiller / PKDLoss)
from mmext.utils.checkpoint import load_checkpoint_file
from tests.tool_runner import ROOT, load_tool

DISTILL = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_distill.py')
PLAIN = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_plain.py')
TEACHER = osp.join(ROOT, 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py')


class MMRazorFpnTeacherDistill(nn.Module):
    """The module tree of MMRazor's ``FpnTeacherDistill`` (mmrazor 90c7af1f), which
    decides its checkpoint keys: ``BaseModel`` registers ``data_preprocessor`` (the
    student's, no persistent buffers), ``BaseAlgorithm`` ``architecture`` (the
    student), ``SingleTeacherDistill`` ``distiller`` (a ``ConfigurableDistiller``:
    ``distill_losses`` ModuleDict of parameter-free PKDLosses, no connectors in the
    PKD configs) and then ``teacher`` (the whole teacher detector)."""

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.data_preprocessor = student.data_preprocessor
        self.architecture = student
        self.distiller = nn.Module()
        self.distiller.distill_losses = nn.ModuleDict(
            {f'loss_pkd_fpn{i}': nn.Identity() for i in range(4)})
        self.distiller.connectors = nn.ModuleDict()
        self.teacher = teacher


def mmrazor_checkpoint(path):
    """An MMRazor PKD checkpoint of the demo pair (RetinaNet R18 student, Faster
    R-CNN R18 teacher) as MMRazor's runner saves it; returns the student."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(1)
    student = MODELS.build(Config.fromfile(PLAIN).model)
    teacher = MODELS.build(Config.fromfile(TEACHER).model)
    state = MMRazorFpnTeacherDistill(student, teacher).state_dict()
    torch.save(dict(meta=dict(epoch=24, mmrazor_version='1.0.0'), state_dict=state,
                    optimizer=dict(state={}, param_groups=[])), path)
    return student, state


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

    count, layout = _tool().convert(str(src), str(dst))

    assert layout == 'mmext'
    converted = load_checkpoint_file(str(dst))
    assert set(converted) == {'meta', 'state_dict'}  # training state dropped
    assert converted['meta'] == dict(iter=2, converted_from=str(src))
    plain = MODELS.build(Config.fromfile(PLAIN).model)
    result = plain.load_state_dict(converted['state_dict'], strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert count == len(plain.state_dict())
    for key, value in plain.state_dict().items():  # the distiller's student weights
        assert torch.equal(value, state[key]), key


def test_mmrazor_layout_converts_to_a_strictly_loadable_student(tmp_path):
    """MMRazor's architecture./teacher. keys -> the student's own keys, teacher and
    training state dropped, every student tensor kept (strict load, equal values)."""
    from mmdet.registry import MODELS
    src, dst = tmp_path / 'pkd_mmrazor.pth', tmp_path / 'student.pth'
    student, state = mmrazor_checkpoint(src)
    assert any(k.startswith('teacher.roi_head.') for k in state)  # what to drop
    assert all(k.startswith(('architecture.', 'teacher.')) for k in state)

    count, layout = _tool().convert(str(src), str(dst))

    assert layout == 'mmrazor'
    converted = load_checkpoint_file(str(dst))
    assert set(converted) == {'meta', 'state_dict'}
    assert converted['meta']['epoch'] == 24
    torch.manual_seed(2)  # other random weights: the load must overwrite all of them
    plain = MODELS.build(Config.fromfile(PLAIN).model)
    plain.load_state_dict(converted['state_dict'], strict=True)
    assert count == len(student.state_dict()) == len(plain.state_dict())
    for key, value in student.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key


def test_distiller_loads_mmrazor_layout():
    """A FeatureDistiller config loads an MMRazor checkpoint: architecture. -> its
    student; the teacher keys are not its (its teacher comes from its own file)."""
    import tempfile
    from mmdet.registry import MODELS
    with tempfile.TemporaryDirectory() as tmp:
        student, state = mmrazor_checkpoint(osp.join(tmp, 'c.pth'))
    cfg = Config.fromfile(DISTILL).model
    cfg.teacher.checkpoint, cfg.teacher.random_init = None, True
    cfg.distill.adapter = False  # MMRazor's PKD has none
    cfg.distill.pairing, cfg.distill.levels = 'stride', [16, 32]  # equal channels
    cfg.teacher.config = PLAIN
    torch.manual_seed(3)
    distiller = MODELS.build(cfg)
    result = distiller.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in student.state_dict().items():
        assert torch.equal(distiller.student.state_dict()[key], value), key


@pytest.mark.parametrize('layout', ['mmrazor', 'modules'])
def test_prefixed_layouts_are_refused_for_a_plain_model(tmp_path, layout):
    """check_checkpoint(model=<plain cfg>) refuses what would load nothing, names
    the converter; a FeatureDistiller config and our own student-named checkpoints
    pass."""
    from mmext.engine import check_checkpoint
    from mmext.utils.errors import UserError
    path = tmp_path / 'ckpt.pth'
    prefix = {'mmrazor': 'architecture.', 'modules': 'student.'}[layout]
    torch.save({'state_dict': {prefix + 'backbone.conv1.weight': torch.zeros(1),
                               'teacher.backbone.conv1.weight' if layout == 'mmrazor'
                               else 'adapters.fpn0.weight': torch.zeros(1)}}, path)
    plain = Config.fromfile(PLAIN).model
    with pytest.raises(UserError, match='convert_distill_checkpoint.py') as info:
        check_checkpoint(str(path), 'checkpoint', model=plain)
    assert '\n' not in str(info.value) and 'ckpt.pth' in str(info.value)
    check_checkpoint(str(path), 'checkpoint', model=Config.fromfile(DISTILL).model)
    ours = tmp_path / 'ours.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1),
                               'distill_adapters.fpn0.weight': torch.zeros(1)}}, ours)
    check_checkpoint(str(ours), 'checkpoint', model=plain)
