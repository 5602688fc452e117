"""Which student FPN map is distilled towards which teacher map, and channel adapters.

Two pairings:

* ``'index'`` (the authors'; MMRazor's ``data_idx`` 0..3): student neck output i
  with teacher neck output i. A Mask R-CNN teacher (P2-P6, strides 4-64) and a
  RetinaNet/FCOS student (P3-P7, strides 8-128) then pair student P3..P6 with
  teacher P2..P5; the loss resizes the student map to the teacher's size.
* ``'stride'`` (an ablation): maps of equal stride, P3 with P3, ...

Strides and channel counts are measured with one dummy forward of each trunk
(:func:`measure_levels`), so any backbone/neck works.
"""
import math
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ..utils.errors import UserError

DUMMY_SIZE = 256  # dummy input side for measuring strides (divisible by 128 and 256)
PAIRINGS = ('index', 'stride')

Level = Tuple[int, int]  # (stride, channels) of one neck output


class LevelPair(NamedTuple):
    """One distilled level: its name (loss key suffix) and the two neck indices."""
    name: str
    student: int
    teacher: int


@torch.no_grad()
def measure_levels(extract: Callable[[Tensor], Sequence[Tensor]], module: nn.Module,
                   size: int = DUMMY_SIZE) -> List[Level]:
    """(stride, channels) of each feature map ``extract`` returns, by a dummy forward.

    ``module`` is put in eval mode for the forward (no BN statistics change) and
    its modes are restored afterwards.
    """
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
        feats = extract(torch.zeros(1, 3, size, size, device=device))
    finally:
        for m, mode in modes.items():
            m.training = mode
    if isinstance(feats, Tensor):
        feats = (feats, )
    return [(2**round(math.log2(size / f.shape[-1])), f.shape[1]) for f in feats]


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
            :func:`measure_levels`.
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
