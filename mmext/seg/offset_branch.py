"""LaU offset prediction branch (the authors' ``DiffBiUpsampling`` offset convs).

Default (``shared=False, init='xavier'``) = the official code
(``LaU-reg/encoding/models/util.py:L17-L33``): two separate branches, one for the row
offsets dy and one for the column offsets dx, each

    Conv1x1 (C_in -> C', no bias) -> LeakyReLU(0.01) -> Conv3x3 (C' -> G*k*k, no bias)
    -> PixelShuffle(k)

with Xavier-uniform weights. For EncNet-R50 (C_in=512, C'=128, k=4, G=1) that is
2 x (512*128 + 128*16*9) = 167,936 parameters: the paper's +0.16 M.

Named options (ours, not the paper's): ``shared=True`` (one Conv1x1 + one Conv3x3 that
predicts dy and dx together: 0.102 M for EncNet-R50) and ``init='zeros'`` (Kaiming
first conv, zero last conv: a fresh branch predicts zero offsets, so LaU starts as
plain interpolation).
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

from .errors import LaUConfigError

_INITS = ('xavier', 'zeros')


def _positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LaUConfigError(f'{owner}: {name} must be a positive integer, got {value!r}')


@MODELS.register_module()
class LaUOffsetBranch(BaseModule):
    """Predicts LaU offsets at the output resolution from a low-resolution feature.

    ``(N, in_channels, h, w) -> (N, 2G, k*h, k*w)`` with channels
    ``[dy_0, dx_0, ..., dy_{G-1}, dx_{G-1}]`` in input-pixel units (the layout of
    :func:`mmext.ops.location_aware_upsample`).

    Args:
        in_channels: channels of the feature that feeds the classifier.
        mid_channels: C' of the paper (128 for R50, 64 for R101).
        scale_factor: LaU factor k.
        groups: G, offset groups (1 = one offset pair shared by every class; the
            paper's and the official code's only setting).
        shared: False (official): separate dy and dx branches. True: one branch
            for both (our earlier design, kept as an option).
        init: 'xavier' (official: Xavier-uniform on every conv) or 'zeros' (Kaiming
            first conv, zero last conv: zero offsets at the start).
        negative_slope: LeakyReLU slope (PyTorch's default 0.01, as the official code).
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int = 128,
                 scale_factor: int = 4,
                 groups: int = 1,
                 shared: bool = False,
                 init: str = 'xavier',
                 negative_slope: float = 0.01,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('mid_channels', mid_channels),
                            ('scale_factor', scale_factor), ('groups', groups)):
            _positive_int('LaUOffsetBranch', name, value)
        if init not in _INITS:
            raise LaUConfigError(f'LaUOffsetBranch: init must be one of {_INITS}, got '
                                 f'{init!r}')
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.scale_factor = scale_factor
        self.groups = groups
        self.shared = bool(shared)
        self.init = init
        k2 = scale_factor ** 2
        if self.shared:
            self.offset = self._branch(in_channels, mid_channels, 2 * groups * k2,
                                       negative_slope)
        else:
            self.offset_y = self._branch(in_channels, mid_channels, groups * k2,
                                         negative_slope)
            self.offset_x = self._branch(in_channels, mid_channels, groups * k2,
                                         negative_slope)
        self.shuffle = nn.PixelShuffle(scale_factor)
        self._init_offset_weights()

    @staticmethod
    def _branch(cin: int, mid: int, cout: int, slope: float) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.LeakyReLU(slope),
                             nn.Conv2d(mid, cout, 3, padding=1, bias=False))

    @property
    def out_channels(self) -> int:
        """2G: the channels of the offset map after PixelShuffle."""
        return 2 * self.groups

    def branches(self):
        """The conv stacks: [offset] (shared) or [offset_y, offset_x]."""
        return [self.offset] if self.shared else [self.offset_y, self.offset_x]

    def _init_offset_weights(self) -> None:
        for branch in self.branches():
            first, act, last = branch
            if self.init == 'xavier':
                nn.init.xavier_uniform_(first.weight)
                nn.init.xavier_uniform_(last.weight)
            else:
                nn.init.kaiming_normal_(first.weight, a=act.negative_slope,
                                        nonlinearity='leaky_relu')
                nn.init.zeros_(last.weight)

    def init_weights(self) -> None:
        # The segmentor's init_weights must not replace this init by a parent's
        # init_cfg; re-applying it keeps the chosen scheme.
        super().init_weights()
        self._init_offset_weights()

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, C_in, h, w) -> (N, 2G, k*h, k*w), channels [dy_0, dx_0, dy_1, ...]."""
        n, _, h, w = feat.shape
        k, g = self.scale_factor, self.groups
        if self.shared:
            # PixelShuffle: input channel c*k*k + r*k + s -> output channel c at
            # sub-pixel (r, s), so the 2G output channels keep [dy_0, dx_0, ...].
            return self.shuffle(self.offset(feat))
        dy = self.shuffle(self.offset_y(feat))  # (N, G, kh, kw)
        dx = self.shuffle(self.offset_x(feat))
        return torch.stack([dy, dx], dim=2).view(n, 2 * g, k * h, k * w)
