"""Level pairing (index = the authors', stride = ablation) and channel adapters."""
import pytest
import torch.nn as nn

from mmext.distill.levels import (LevelPair, build_adapters, describe_pairs,
                                  pair_levels, resize_warnings)
from mmext.utils.feature_levels import measure_levels
from mmext.utils.errors import UserError

# (stride, channels) of the neck outputs: a Mask R-CNN / Faster R-CNN FPN (P2-P6)
# and a RetinaNet / FCOS FPN (P3-P7).
MASK_RCNN = [(4, 256), (8, 256), (16, 256), (32, 256), (64, 256)]
RETINANET = [(8, 256), (16, 256), (32, 256), (64, 256), (128, 256)]


def test_index_pairing_is_the_authors():
    pairs = pair_levels(RETINANET, MASK_RCNN, 'index', [0, 1, 2, 3])
    assert pairs == [LevelPair('fpn0', 0, 0), LevelPair('fpn1', 1, 1),
                     LevelPair('fpn2', 2, 2), LevelPair('fpn3', 3, 3)]
    # i.e. student strides 8..64 against teacher strides 4..32
    assert [RETINANET[p.student][0] for p in pairs] == [8, 16, 32, 64]
    assert [MASK_RCNN[p.teacher][0] for p in pairs] == [4, 8, 16, 32]
    assert len(pair_levels(RETINANET, MASK_RCNN, 'index')) == 5  # None: all


def test_stride_pairing_ablation():
    pairs = pair_levels(RETINANET, MASK_RCNN, 'stride', [8, 16, 32, 64])
    assert pairs == [('s8', 0, 1), ('s16', 1, 2), ('s32', 2, 3), ('s64', 3, 4)]
    assert pair_levels(RETINANET, MASK_RCNN, 'stride') == pairs  # None: shared strides


def test_pairing_errors():
    with pytest.raises(UserError, match=r'index 4 does not exist: the teacher neck has '
                       r'4 levels \(indices 0..3\)'):
        pair_levels(RETINANET, MASK_RCNN[:4], 'index', [0, 4])
    with pytest.raises(UserError, match='stride 128 is not produced by the teacher'):
        pair_levels(RETINANET, MASK_RCNN, 'stride', [16, 128])
    with pytest.raises(UserError, match="pairing must be one of 'index', 'stride'"):
        pair_levels(RETINANET, MASK_RCNN, 'position')
    with pytest.raises(UserError, match='share none'):
        pair_levels([(8, 4)], [(4, 4)], 'stride')


def test_adapters_only_where_channels_differ():
    student = [(8, 64), (16, 64)]
    teacher = [(4, 128), (8, 64)]
    pairs = pair_levels(student, teacher, 'index')
    adapters = build_adapters(student, teacher, pairs, 'auto')
    assert list(adapters) == ['fpn0']
    assert (adapters['fpn0'].in_channels, adapters['fpn0'].out_channels) == (64, 128)
    assert list(build_adapters(student, teacher, pairs, True)) == ['fpn0', 'fpn1']
    with pytest.raises(UserError, match='64 channels, the teacher 128'):
        build_adapters(student, teacher, pairs, False)


def test_stride_pairing_adapters_use_the_paired_teacher_level():
    """With stride pairing the student map i meets teacher map j != i: each adapter
    goes from the student level's channels to its paired teacher level's channels,
    and only pairs whose two levels differ get one (teacher channels differ per level)."""
    teacher = [(4, 64), (8, 128), (16, 256), (32, 512)]
    student = [(8, 128), (16, 96), (32, 512), (64, 512)]
    pairs = pair_levels(student, teacher, 'stride')
    assert pairs == [('s8', 0, 1), ('s16', 1, 2), ('s32', 2, 3)]
    adapters = build_adapters(student, teacher, pairs, 'auto')
    assert list(adapters) == ['s16']  # s8: 128 = 128, s32: 512 = 512
    conv = adapters['s16']
    assert (conv.in_channels, conv.out_channels) == (96, 256)
    assert conv.weight.shape == (256, 96, 1, 1)
    every = build_adapters(student, teacher, pairs, True)
    assert {name: (c.in_channels, c.out_channels) for name, c in every.items()} == {
        's8': (128, 128), 's16': (96, 256), 's32': (512, 512)}
    with pytest.raises(UserError, match='s16: the student has 96 channels, the '
                       'teacher 256'):
        build_adapters(student, teacher, pairs, False)


def test_measure_levels_restores_train_mode():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, stride=4, padding=1), nn.BatchNorm2d(5))
    net.train()
    before = net[1].running_mean.clone()
    assert measure_levels(lambda x: (net(x), net(x)[:, :, ::2, ::2]), net) == [
        (4, 5), (8, 5)]
    assert net.training and net[1].training
    assert (net[1].running_mean == before).all()  # eval during the dummy forward


def test_describe_pairs_states_strides_channels_resize_and_adapter():
    student = [(8, 64), (16, 64), (32, 64), (64, 64), (128, 64)]  # RetinaNet demo
    pairs = pair_levels(student, MASK_RCNN, 'index', [0, 3])
    adapted = set(build_adapters(student, MASK_RCNN, pairs, 'auto'))
    assert describe_pairs(student, MASK_RCNN, pairs, adapted) == [
        'fpn0: student level 0 (stride 8, 64 ch) -> teacher level 0 (stride 4, 256 '
        "ch); resize 2x, student map upsampled to the teacher's size; adapter 1x1 "
        'conv 64->256',
        'fpn3: student level 3 (stride 64, 64 ch) -> teacher level 3 (stride 32, 256 '
        "ch); resize 2x, student map upsampled to the teacher's size; adapter 1x1 "
        'conv 64->256']
    # Equal strides and channels: no resize, no adapter; the other resize side.
    same = pair_levels(RETINANET, MASK_RCNN, 'stride', [16])
    assert describe_pairs(RETINANET, MASK_RCNN, same, set()) == [
        's16: student level 1 (stride 16, 256 ch) -> teacher level 2 (stride 16, 256 '
        'ch); resize none (equal strides); adapter none']
    finer = pair_levels(MASK_RCNN, RETINANET, 'index', [1])  # student 8 vs teacher 16
    assert describe_pairs(MASK_RCNN, RETINANET, finer, set(), resize='teacher')[0] \
        .endswith("resize 2x, teacher map upsampled to the student's size; "
                  'adapter none')
    assert 'resize 2x, student map downsampled' in describe_pairs(
        MASK_RCNN, RETINANET, finer, set())[0]


def test_resize_warnings_only_beyond_2x_either_way():
    detr = [(32, 256)]  # DETR: one stride-32 map
    pairs = pair_levels(detr, MASK_RCNN, 'index')
    assert [(p.student, p.teacher) for p in pairs] == [(0, 0)]  # stride 32 vs 4
    assert describe_pairs(detr, MASK_RCNN, pairs, set())[0].startswith(
        'fpn0: student level 0 (stride 32, 256 ch) -> teacher level 0 (stride 4, '
        "256 ch); resize 8x, student map upsampled")
    assert resize_warnings(detr, MASK_RCNN, pairs) == [
        'distill level fpn0 pairs student level 0 (stride 32) with teacher level 0 '
        '(stride 4): the loss resizes one map 8x to the size of the other (more than '
        "2x). Set distill.pairing='stride' to pair maps of equal stride, or choose "
        'the paired levels with distill.levels.']
    # The other direction (a stride-4 student map against a stride-32 teacher map).
    back = pair_levels(MASK_RCNN, detr, 'index')
    assert len(resize_warnings(MASK_RCNN, detr, back)) == 1
    assert '8x' in resize_warnings(MASK_RCNN, detr, back)[0]
    # 2x (the authors' RetinaNet vs Mask R-CNN pairing) and 1x are not warned about.
    assert resize_warnings(RETINANET, MASK_RCNN, pair_levels(
        RETINANET, MASK_RCNN, 'index')) == []
    assert resize_warnings(detr, MASK_RCNN, pair_levels(detr, MASK_RCNN,
                                                        'stride')) == []
    # 4x is: student P5 (stride 32) with teacher P2 (stride 8 here) via index.
    assert len(resize_warnings([(32, 8)], [(8, 8)], [LevelPair('fpn0', 0, 0)])) == 1
