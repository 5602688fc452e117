"""Which student FPN map is distilled towards which teacher map, and channel adapters.

Two pairings:

* ``'index'`` (the authors'; MMRazor's ``data_idx`` 0..3): student neck output i
  with teacher neck output i. A Mask R-CNN teacher (P2-P6, strides 4-64) and a
  RetinaNet/FCOS student (P3-P7, strides 8-128) then pair student P3..P6 with
  teacher P2..P5; the loss resizes the student map to the teacher's size.
* ``'stride'`` (an ablation): maps of equal stride, P3 with P3, ...

Strides and channel counts are measured with one dummy forward of each trunk
(:func:`~mmext.utils.feature_levels.measure_levels`), so any backbone/neck works.
:func:`describe_pairs` and :func:`resize_warnings` say, in words, what was paired
(the distiller logs them when it is built).
"""
from typing import Collection, List, NamedTuple, Optional, Sequence, Union

import torch.nn as nn

from ..utils.errors import UserError
from ..utils.feature_levels import Level

PAIRINGS = ('index', 'stride')
# A pair whose strides differ by more than this factor (either way) is warned about:
# the loss then compares maps whose pixels cover very different image regions.
MAX_RESIZE = 2


class LevelPair(NamedTuple):
    """One distilled level: its name (loss key suffix) and the two neck indices."""
    name: str
    student: int
    teacher: int


def _pair_by_index(num_s: int, num_t: int,
                   levels: Optional[Sequence[int]]) -> List[LevelPair]:
    levels = list(range(min(num_s, num_t))) if levels is None else list(levels)
    for i in levels:
        for who, n in (('student', num_s), ('teacher', num_t)):
            if not isinstance(i, int) or not 0 <= i < n:
                raise UserError(f'distill level index {i!r} does not exist: the {who} '
                                f'neck has {n} levels (indices 0..{n - 1})')
    return [LevelPair(f'fpn{i}', i, i) for i in levels]


def _pair_by_stride(s_strides: List[int], t_strides: List[int],
                    levels: Optional[Sequence[int]]) -> List[LevelPair]:
    for who, strides in (('student', s_strides), ('teacher', t_strides)):
        if len(set(strides)) != len(strides):
            raise UserError(f'the {who} neck has several maps of one stride '
                            f"({strides}): use distill.pairing='index'")
    if levels is None:
        levels = [s for s in s_strides if s in t_strides]
        if not levels:
            raise UserError(f'student strides {s_strides} and teacher strides '
                            f'{t_strides} share none: nothing to distil')
    pairs = []
    for stride in levels:
        for who, strides in (('student', s_strides), ('teacher', t_strides)):
            if stride not in strides:
                raise UserError(f'distill level stride {stride} is not produced by '
                                f'the {who} neck (its strides: {strides})')
        pairs.append(LevelPair(f's{stride}', s_strides.index(stride),
                               t_strides.index(stride)))
    return pairs


def pair_levels(student: Sequence[Level], teacher: Sequence[Level], pairing: str,
                levels: Optional[Sequence[int]] = None) -> List[LevelPair]:
    """The distilled level pairs.

    Args:
        student, teacher: (stride, channels) per neck output, from
            :func:`~mmext.utils.feature_levels.measure_levels`.
        pairing: ``'index'`` or ``'stride'`` (module doc).
        levels: neck output indices (index pairing) or strides (stride pairing) to
            distil; ``None``: every index both necks have / every shared stride.
    """
    if pairing == 'index':
        return _pair_by_index(len(student), len(teacher), levels)
    if pairing == 'stride':
        return _pair_by_stride([s for s, _ in student], [s for s, _ in teacher], levels)
    raise UserError(f"distill.pairing must be one of {', '.join(map(repr, PAIRINGS))}, "
                    f'got {pairing!r}')


def build_adapters(student: Sequence[Level], teacher: Sequence[Level],
                   pairs: Sequence[LevelPair], mode: Union[str, bool]) -> nn.ModuleDict:
    """Bias-free 1x1 convs (student channels -> teacher channels), keyed by pair name.

    ``mode``: ``'auto'`` (only where the channel counts differ), ``True`` (every
    pair) or ``False`` (none; different channel counts are then an error).
    """
    if mode not in ('auto', True, False):
        raise UserError(f"distill.adapter must be 'auto', True or False, got {mode!r}")
    adapters = nn.ModuleDict()
    for pair in pairs:
        c_s, c_t = student[pair.student][1], teacher[pair.teacher][1]
        if c_s != c_t and mode is False:
            raise UserError(
                f'distill level {pair.name}: the student has {c_s} channels, the '
                f'teacher {c_t}; PKD needs equal channels. Set distill.adapter='
                "'auto' (1x1 conv adapter) or change a neck's out_channels")
        if mode is True or c_s != c_t:
            adapters[pair.name] = nn.Conv2d(c_s, c_t, kernel_size=1, bias=False)
    return adapters


def resize_factor(student_stride: int, teacher_stride: int) -> float:
    """How much coarser the student map is than the teacher map it is paired with:
    ``student_stride / teacher_stride`` (2.0: the student map has half the teacher
    map's width; 0.5: twice its width; 1.0: the same size, no resize)."""
    return student_stride / teacher_stride


def _times(factor: float) -> str:
    """8.0 -> '8x', 0.125 -> '8x' (the size ratio, whichever way)."""
    ratio = max(factor, 1 / factor)
    return f'{ratio:g}x'


def _resize_words(factor: float, resize: Optional[str]) -> str:
    """'none (equal strides)' or e.g. "2x, student map upsampled to the teacher's
    size"."""
    if factor == 1:
        return 'none (equal strides)'
    if resize == 'student':
        way = 'upsampled' if factor > 1 else 'downsampled'
        return f"{_times(factor)}, student map {way} to the teacher's size"
    if resize == 'teacher':
        way = 'downsampled' if factor > 1 else 'upsampled'
        return f"{_times(factor)}, teacher map {way} to the student's size"
    return f'{_times(factor)}, by the loss'


def describe_pairs(student: Sequence[Level], teacher: Sequence[Level],
                   pairs: Sequence[LevelPair], adapted: Collection[str],
                   resize: Optional[str] = 'student') -> List[str]:
    """One line per level pair, saying what the distillation loss compares.

    Args:
        student, teacher: (stride, channels) per neck output (``measure_levels``).
        pairs: from :func:`pair_levels`.
        adapted: names of the pairs that have a 1x1 conv adapter
            (the keys of :func:`build_adapters`' result).
        resize: the loss's ``resize`` (``'student'``: the student map is resized
            to the teacher's size; ``'teacher'``: the other way); ``None``: unknown.

    Returns:
        e.g. ``'fpn0: student level 0 (stride 8, 64 ch) -> teacher level 0
        (stride 4, 128 ch); resize 2x, student map upsampled to the teacher's
        size; adapter 1x1 conv 64->128'``.
    """
    lines = []
    for pair in pairs:
        (s_stride, c_s), (t_stride, c_t) = student[pair.student], teacher[pair.teacher]
        adapter = f'1x1 conv {c_s}->{c_t}' if pair.name in adapted else 'none'
        lines.append(
            f'{pair.name}: student level {pair.student} (stride {s_stride}, {c_s} ch) '
            f'-> teacher level {pair.teacher} (stride {t_stride}, {c_t} ch); resize '
            f'{_resize_words(resize_factor(s_stride, t_stride), resize)}; '
            f'adapter {adapter}')
    return lines


def resize_warnings(student: Sequence[Level], teacher: Sequence[Level],
                    pairs: Sequence[LevelPair], max_resize: float = MAX_RESIZE
                    ) -> List[str]:
    """One warning per pair whose maps differ in size by more than ``max_resize``
    times (either way), naming the pair and the two config keys that change it.

    Index pairing (the default) pairs neck output i with i whatever their strides:
    e.g. a DETR student's single stride-32 map with a Mask R-CNN teacher's stride-4
    P2, an 8x resize in the loss.
    """
    warnings = []
    for pair in pairs:
        s_stride, t_stride = student[pair.student][0], teacher[pair.teacher][0]
        factor = resize_factor(s_stride, t_stride)
        if max(factor, 1 / factor) <= max_resize:
            continue
        warnings.append(
            f'distill level {pair.name} pairs student level {pair.student} (stride '
            f'{s_stride}) with teacher level {pair.teacher} (stride {t_stride}): the '
            f'loss resizes one map {_times(factor)} to the size of the other (more '
            f"than {max_resize:g}x). Set distill.pairing='stride' to pair maps of "
            'equal stride, or choose the paired levels with distill.levels.')
    return warnings
