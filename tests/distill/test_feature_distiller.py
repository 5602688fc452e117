"""FeatureDistiller in-process: pairing, adapters, frozen teacher, checkpoints, errors."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmext  # noqa: F401  (registers FeatureDistiller / PKDLoss)
from mmext.utils.errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_distill.py')
PLAIN = osp.join(ROOT, 'configs/demo/pkd_retinanet_r18_plain.py')
TWO_STAGE_TEACHER = osp.join(ROOT, 'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py')


def _build(**changes):
    """The demo distiller (Faster R-CNN R18 teacher: P2-P6 like Mask R-CNN) with
    random teacher weights and ``changes`` (section__key=value)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(DISTILL).model
    cfg.teacher.checkpoint = None
    cfg.teacher.random_init = True
    for key, value in changes.items():
        section, name = key.split('__')
        cfg[section][name] = value
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def distiller():
    torch.manual_seed(0)
    return _build()


def _batch(model, num=2, size=96):
    """A tiny detection batch, as the data preprocessor gives it."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(num):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                             batch_input_shape=(size, size), scale_factor=(1, 1),
                                             ori_shape=(size, size)))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[10., 12., 50., 60.], [40., 30., 90., 80.]])
        gt.labels = torch.tensor([0, 2])
        sample.gt_instances = gt
        samples.append(sample)
    return torch.randn(num, 3, size, size, generator=gen), samples


def test_authors_index_pairing_two_stage_teacher_retinanet_student(distiller):
    assert [s for s, _ in distiller.student_levels] == [8, 16, 32, 64, 128]
    assert [s for s, _ in distiller.teacher_levels] == [4, 8, 16, 32, 64]
    # (name, student index, teacher index): neck output i with i, as MMRazor's
    # data_idx 0..3, i.e. student P3..P6 with teacher P2..P5.
    assert distiller.level_pairs == [('fpn0', 0, 0), ('fpn1', 1, 1), ('fpn2', 2, 2),
                                     ('fpn3', 3, 3)]


def _logged(monkeypatch, **changes):
    """(level, message) of every print_log call while building the demo distiller."""
    from mmext.distill import feature_distiller
    records = []
    monkeypatch.setattr(feature_distiller, 'print_log',
                        lambda msg, logger=None, level=None: records.append((level, msg)))
    _build(**changes)
    return records


def test_build_logs_the_pairs_once(monkeypatch):
    import logging
    records = _logged(monkeypatch)
    assert records == [(logging.INFO, (
        "FeatureDistiller: 4 level pairs (pairing='index'), student -> teacher:\n"
        + '\n'.join(
            f'  fpn{i}: student level {i} (stride {8 << i}, 64 ch) -> teacher level {i} '
            f"(stride {4 << i}, 128 ch); resize 2x, student map upsampled to the "
            "teacher's size; adapter 1x1 conv 64->128" for i in range(4))))]
    # stride pairing with the plain (same-width) student as teacher: no resize, no
    # adapter, nothing to warn about
    same = _logged(monkeypatch, teacher__config=PLAIN, distill__pairing='stride',
                   distill__levels=[8, 16])
    assert same == [(logging.INFO, (
        "FeatureDistiller: 2 level pairs (pairing='stride'), student -> teacher:\n"
        '  s8: student level 0 (stride 8, 64 ch) -> teacher level 0 (stride 8, 64 ch); '
        'resize none (equal strides); adapter none\n'
        '  s16: student level 1 (stride 16, 64 ch) -> teacher level 1 (stride 16, 64 '
        'ch); resize none (equal strides); adapter none'))]


def test_build_warns_about_a_pair_resized_more_than_2x(monkeypatch):
    """A teacher with one stride-4 map (P2): the default student's P3 meets it at
    2x (no warning); a student whose first map is P5 (stride 32) at 8x: one
    warning naming the pair and the two keys that change it."""
    import logging
    teacher = Config.fromfile(TWO_STAGE_TEACHER).model
    teacher.neck.update(start_level=0, end_level=0, num_outs=1)  # P2 only
    records = _logged(monkeypatch, teacher__config=teacher, distill__levels=None)
    assert [level for level, _ in records] == [logging.INFO]
    assert records[0][1].startswith("FeatureDistiller: 1 level pair (pairing='index')")
    assert 'resize 2x' in records[0][1]
    student_neck = dict(Config.fromfile(PLAIN).model.neck, start_level=3,
                        add_extra_convs='on_input', num_outs=2)  # P5, P6
    records = _logged(monkeypatch, teacher__config=teacher, distill__levels=None,
                      student__neck=student_neck)
    assert [level for level, _ in records] == [logging.INFO, logging.WARNING]
    assert 'fpn0: student level 0 (stride 32, 64 ch) -> teacher level 0 (stride 4, ' \
        "128 ch); resize 8x" in records[0][1]
    assert records[1][1] == (
        'FeatureDistiller: distill level fpn0 pairs student level 0 (stride 32) with '
        'teacher level 0 (stride 4): the loss resizes one map 8x to the size of the '
        "other (more than 2x). Set distill.pairing='stride' to pair maps of equal "
        'stride, or choose the paired levels with distill.levels.')


def test_default_pairing_is_the_authors_index_pairing():
    """No `pairing` in the config: neck output i with i (MMRazor's data_idx), so
    student P3..P6 meets teacher P2..P5; no `loss`: PKDLoss weight 1, unbiased."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(DISTILL).model
    cfg.teacher.checkpoint, cfg.teacher.random_init = None, True
    cfg.distill = dict()
    model = MODELS.build(cfg)
    assert model.pairing == 'index'
    assert [(p.name, p.student, p.teacher) for p in model.level_pairs] == [
        (f'fpn{i}', i, i) for i in range(5)]
    assert [model.student_levels[p.student][0] for p in model.level_pairs][:4] == \
        [8, 16, 32, 64]
    assert [model.teacher_levels[p.teacher][0] for p in model.level_pairs][:4] == \
        [4, 8, 16, 32]
    assert type(model.distill_loss).__name__ == 'PKDLoss'
    assert model.distill_loss.unbiased and model.distill_loss.loss_weight == 1.0


def test_stride_pairing_and_level_selection():
    model = _build(distill__pairing='stride', distill__levels=None)
    assert model.level_pairs == [('s8', 0, 1), ('s16', 1, 2), ('s32', 2, 3),
                                 ('s64', 3, 4)]
    model = _build(distill__pairing='stride', distill__levels=[16, 32])
    assert model.level_pairs == [('s16', 1, 2), ('s32', 2, 3)]
    assert _build(distill__levels=[1, 3]).level_pairs == [('fpn1', 1, 1), ('fpn3', 3, 3)]


def _shapes_reaching_the_loss(model, size=96):
    """[(student map shape, teacher map shape)] per level, as the loss receives them."""
    seen = []
    handle = model.distill_loss.register_forward_hook(
        lambda module, args, out: seen.append((tuple(args[0].shape), tuple(args[1].shape))))
    try:
        model.train()
        model.loss(*_batch(model, size=size))
    finally:
        handle.remove()
    return seen


def test_authors_pairing_compares_student_p3_p6_with_teacher_p2_p5(distiller):
    # 96x96 input: student P3..P6 are 12, 6, 3, 2 px wide, teacher P2..P5 24, 12, 6,
    # 3 px; adapters bring the student's 64 channels to 128; the loss resizes the
    # student map up to the teacher's (test_pkd_loss.py).
    assert _shapes_reaching_the_loss(distiller) == [
        ((2, 128, 12, 12), (2, 128, 24, 24)), ((2, 128, 6, 6), (2, 128, 12, 12)),
        ((2, 128, 3, 3), (2, 128, 6, 6)), ((2, 128, 2, 2), (2, 128, 3, 3))]
    stride = _build(distill__pairing='stride', distill__levels=[8, 16, 32, 64])
    assert _shapes_reaching_the_loss(stride) == [
        ((2, 128, 12, 12), (2, 128, 12, 12)), ((2, 128, 6, 6), (2, 128, 6, 6)),
        ((2, 128, 3, 3), (2, 128, 3, 3)), ((2, 128, 2, 2), (2, 128, 2, 2))]


def test_level_a_neck_lacks_is_an_error():
    with pytest.raises(UserError, match=r'stride 128 is not produced by the teacher'):
        _build(distill__pairing='stride', distill__levels=[16, 128])
    with pytest.raises(UserError, match=r'stride 4 is not produced by the student'):
        _build(distill__pairing='stride', distill__levels=[4])
    with pytest.raises(UserError, match='index 7 does not exist'):
        _build(distill__pairing='index', distill__levels=[7])


def test_misspelt_distill_or_teacher_key_is_a_one_line_error():
    with pytest.raises(UserError) as info:
        _build(distill__levles=[0, 1])
    message = str(info.value)
    assert message == ("model.distill: unknown key 'levles' (did you mean 'levels'?); "
                       'accepted keys: adapter, levels, loss, pairing')
    with pytest.raises(UserError, match="unknown key 'checkpiont' .did you mean "
                       "'checkpoint'.*accepted keys: checkpoint, checkpoint_url, "
                       'config, random_init'):
        _build(teacher__checkpiont='t.pth')


def test_adapters_only_where_channels_differ(distiller):
    # Student FPN: 64 channels, teacher: 128 -> one 64->128 1x1 conv per level.
    assert sorted(distiller.adapters) == ['fpn0', 'fpn1', 'fpn2', 'fpn3']
    conv = distiller.adapters['fpn0']
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (64, 128, (1, 1))
    # Same-channel teacher (the plain student config): no adapters.
    same = _build(teacher__config=PLAIN, distill__pairing='stride',
                  distill__levels=None)
    assert len(same.adapters) == 0
    assert [name for name, _, _ in same.level_pairs] == ['s8', 's16', 's32', 's64', 's128']
    assert len(_build(teacher__config=PLAIN, distill__adapter=True).adapters) == 4


def test_mismatched_channels_without_adapters_is_an_error():
    with pytest.raises(UserError, match='64 channels, the teacher 128'):
        _build(distill__adapter=False)


def test_mmdet_package_teacher_config_through_mmengine_hub(monkeypatch):
    from mmext.distill import teacher as teacher_module
    calls = []
    real = teacher_module.get_config  # mmengine.hub.get_config

    def spy(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(teacher_module, 'get_config', spy)
    model = _build(teacher__config='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    assert calls == ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
    assert not hasattr(teacher_module, 'tempfile')  # no config file of our own
    assert [s for s, _ in model.teacher_levels] == [8, 16, 32, 64, 128]
    assert model.teacher_levels[0][1] == 256 and len(model.adapters) == 4
    with pytest.raises(UserError, match="teacher config 'mmdet::retinanet/nope.py' "
                       'not found'):
        _build(teacher__config='mmdet::retinanet/nope.py')


def test_teacher_input_renormalisation():
    # A teacher that wants raw 0-255 BGR pixels: the student's normalised RGB input
    # is turned back into them.
    teacher = Config.fromfile(PLAIN).model
    teacher.data_preprocessor = dict(type='DetDataPreprocessor', mean=None, std=None,
                                     bgr_to_rgb=False, pad_size_divisor=32)
    model = _build(teacher__config=teacher)
    raw_bgr = torch.rand(1, 3, 8, 8) * 255
    student_in = model.data_preprocessor(
        dict(inputs=[raw_bgr[0].to(torch.uint8)]), False)['inputs']
    expected = raw_bgr[0].to(torch.uint8).float()
    got = model.teacher_inputs(student_in)[0, :, :8, :8]
    assert torch.allclose(got, expected, atol=1e-3)
    assert _build().teacher_inputs(student_in) is student_in  # same normalisation


def test_loss_has_student_terms_and_one_term_per_level(distiller):
    inputs, samples = _batch(distiller)
    distiller.train()
    losses = distiller.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    assert sorted(k for k in losses if k.startswith('loss_pkd')) == [
        'loss_pkd_fpn0', 'loss_pkd_fpn1', 'loss_pkd_fpn2', 'loss_pkd_fpn3']
    for key in ('loss_pkd_fpn0', 'loss_pkd_fpn3'):
        assert losses[key].requires_grad and torch.isfinite(losses[key])


def test_predict_is_the_students(distiller):
    inputs, samples = _batch(distiller)
    distiller.eval()
    torch.manual_seed(0)
    ours = distiller.predict(inputs, copy.deepcopy(samples))
    theirs = distiller.student.predict(inputs, copy.deepcopy(samples))
    assert torch.equal(ours[0].pred_instances.bboxes, theirs[0].pred_instances.bboxes)


def test_teacher_frozen_through_training_steps():
    model = _build()
    teacher = model.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert not any(p.requires_grad for p in teacher.parameters())
    # The teacher is not part of the trained module: optimizer and DDP never see it.
    own = {id(p) for p in model.parameters()}
    assert not any(id(p) in own for p in teacher.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    inputs, samples = _batch(model)
    student_before = model.student.backbone.conv1.weight.clone()
    norms = [m for m in teacher.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms  # the R18 teacher's BN layers: their statistics must not move
    for _ in range(2):
        model.train()  # as the runner does every iteration
        assert teacher.training and not any(m.training for m in norms)
        losses = model.loss(inputs, samples)
        total = sum(v.sum() if torch.is_tensor(v) else sum(v) for k, v in losses.items()
                    if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    for key, value in teacher.state_dict().items():  # weights AND BN running stats
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in teacher.parameters())
    assert not torch.equal(model.student.backbone.conv1.weight, student_before)
    assert model.adapters['fpn0'].weight.grad is not None


def _dropout_teacher(**changes):
    """The demo distiller with a Dropout added to its teacher's neck (a stand-in for
    Swin's drop-path; the Swin configs themselves: test_pkd_configs.py)."""
    model = _build(**changes)
    neck = model.teacher.neck
    neck.add_module('dropout', torch.nn.Dropout(0.5))
    # applied to the neck's outputs, so that it acts on the teacher features
    neck.register_forward_hook(lambda m, args, out: tuple(m.dropout(o) for o in out))
    return model


def test_train_sets_the_authors_teacher_modes_by_default():
    """MMRazor's SingleTeacherDistill.train (teacher_norm_eval=True): the teacher
    trains except its norm layers; dropout stays active; eval() -> all eval."""
    model = _dropout_teacher()
    assert model.teacher_train_mode == 'norm_eval'
    model.train()
    assert model.student.training and model.adapters.training
    teacher = model.teacher
    bns = [m for m in teacher.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert teacher.neck.dropout.training and teacher.backbone.training
    # really active: two teacher forwards of one batch differ
    inputs = torch.randn(1, 3, 64, 64)
    assert not torch.equal(model.teacher_features(inputs)[0],
                           model.teacher_features(inputs)[0])
    model.train(False)
    assert not model.student.training
    assert not any(m.training for m in teacher.modules())
    assert torch.equal(model.teacher_features(inputs)[0], model.teacher_features(inputs)[0])


def test_train_mode_eval_keeps_every_teacher_module_in_eval_mode():
    """The named option: a deterministic teacher while the student trains."""
    model = _dropout_teacher(teacher__train_mode='eval')
    model.teacher.train()  # as if something had switched it to training mode
    model.train()
    assert model.student.training
    assert [n for n, m in model.teacher.named_modules() if m.training] == []
    with pytest.raises(UserError, match="train_mode must be one of"):
        _build(teacher__train_mode='frozen')


def test_state_dict_is_the_students_and_loads_into_the_plain_student(distiller):
    from mmdet.registry import MODELS
    state = distiller.state_dict()
    assert not any(k.startswith(('student.', 'teacher.')) for k in state)
    plain = MODELS.build(Config.fromfile(PLAIN).model)
    student_keys = set(plain.state_dict())
    adapter_keys = {k for k in state if k.startswith('distill_adapters.')}
    assert adapter_keys and set(state) - adapter_keys == student_keys
    result = plain.load_state_dict(
        {k: v for k, v in state.items() if k not in adapter_keys}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in plain.state_dict().items():
        assert torch.equal(value, state[key])
    # And back: a distiller loads its own state dict (resume), strictly.
    other = _build()
    other.load_state_dict(state, strict=True)
    assert torch.equal(other.adapters['fpn0'].weight, distiller.adapters['fpn0'].weight)


def test_missing_teacher_checkpoint_names_path_and_fix(tmp_path):
    path = str(tmp_path / 'no_teacher.pth')
    with pytest.raises(UserError, match='no_teacher.pth') as info:
        _build(teacher__checkpoint=path, teacher__random_init=False,
               teacher__checkpoint_url='https://example.org/t.pth')
    assert 'not found' in str(info.value) and 'https://example.org/t.pth' in str(info.value)
    with pytest.raises(UserError, match='checkpoint is not set'):
        _build(teacher__random_init=False)


def test_teacher_checkpoint_of_another_architecture(tmp_path, distiller):
    # A RetinaNet-R18 checkpoint given for the Faster R-CNN-R18 teacher: same backbone,
    # other neck widths -> refused, naming the file and what does not match.
    path = tmp_path / 'retinanet.pth'
    torch.save({'state_dict': distiller.state_dict()}, path)
    with pytest.raises(UserError, match='does not match the teacher config') as info:
        _build(teacher__checkpoint=str(path))
    assert 'retinanet.pth' in str(info.value) and 'other shapes' in str(info.value)


def test_teacher_checkpoint_is_loaded(tmp_path):
    from mmdet.registry import MODELS
    teacher = MODELS.build(Config.fromfile(TWO_STAGE_TEACHER).model)
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, path)
    model = _build(teacher__checkpoint=str(path), teacher__random_init=False)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher.state_dict()[key]), key
