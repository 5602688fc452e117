"""The stride and channel count of each map a backbone / neck returns, measured.

Shared by the PKD distiller (pairing student and teacher levels,
``mmext/distill/levels.py``) and SpatialFlow (checking its neck against its anchor
strides, ``mmext/panoptic/neck_strides.py``): what the config says a neck outputs is
not read; one dummy forward says what it does output, whatever the backbone / neck.
"""
import math
from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

DUMMY_SIZE = 256  # dummy input side for measuring strides (divisible by 128 and 256)

Level = Tuple[int, int]  # (stride, channels) of one neck output


@torch.no_grad()
def measure_levels(extract: Callable[[Tensor], Sequence[Tensor]], module: nn.Module,
                   size: int = DUMMY_SIZE) -> List[Level]:
    """(stride, channels) of each feature map ``extract`` returns, by a dummy forward.

    ``extract`` gets one (1, 3, size, size) zero image on ``module``'s device and
    returns (1, C_l, H_l, W_l) maps (or one map); the stride of map l is
    ``size / W_l`` rounded to a power of two. ``module`` (the owner of ``extract``)
    is put in eval mode for the forward (no BN statistics change) and its modes are
    restored afterwards.
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
