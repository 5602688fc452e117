"""LaU offset prediction branch: Conv1x1 -> LeakyReLU -> Conv3x3 -> PixelShuffle(k)."""
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

from .errors import LaUConfigError


@MODELS.register_module()
class LaUOffsetBranch(BaseModule):
    """Predicts LaU offsets at the output resolution from a low-resolution feature.

    ``(N, in_channels, h, w) -> (N, 2G, k*h, k*w)`` with channels
    ``[dy_0, dx_0, ..., dy_{G-1}, dx_{G-1}]`` in input-pixel units (the layout of
    :func:`mmext.ops.location_aware_upsample`).

    The last conv is zero-initialised, so a freshly built branch predicts zero
    offsets: LaU then is plain interpolation (see ``LaUMixin``'s base coordinates)
    and training starts from it. The first conv gets its gradient from the second
    step on (as with zero-initialised residual branches).

    Args:
        in_channels: channels of the feature that feeds the classifier.
        mid_channels: C' of the paper (128 for R50, 64 for R101).
        scale_factor: LaU factor k.
        groups: G, offset groups (1 = one offset pair shared by every class).
        negative_slope: LeakyReLU slope.
        init_std: std of a normal init of the last conv instead of zeros (0 = zeros).
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int = 128,
                 scale_factor: int = 4,
                 groups: int = 1,
                 negative_slope: float = 0.01,
                 init_std: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('mid_channels', mid_channels),
                            ('scale_factor', scale_factor), ('groups', groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LaUConfigError(
                    f'LaUOffsetBranch: {name} must be a positive integer, got {value!r}')
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.scale_factor = scale_factor
        self.groups = groups
        self.init_std = init_std
        self.reduce = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.act = nn.LeakyReLU(negative_slope)
        self.predict = nn.Conv2d(mid_channels, 2 * groups * scale_factor ** 2, 3,
                                 padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(scale_factor)
        self._init_offset_weights()

    @property
    def out_channels(self) -> int:
        """2G: the channels of the offset map after PixelShuffle."""
        return 2 * self.groups

    def _init_offset_weights(self) -> None:
        nn.init.kaiming_normal_(self.reduce.weight, a=self.act.negative_slope,
                                nonlinearity='leaky_relu')
        if self.init_std > 0:
            nn.init.normal_(self.predict.weight, std=self.init_std)
        else:
            nn.init.zeros_(self.predict.weight)

    def init_weights(self) -> None:
        # The segmentor's init_weights must not undo the "start from interpolation"
        # init (a parent's init_cfg would otherwise reach these convs).
        super().init_weights()
        self._init_offset_weights()

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        # PixelShuffle: channel g*k*k + r*k + c -> channel g at sub-pixel (r, c), so
        # the 2G output channels keep the [dy_0, dx_0, dy_1, ...] order.
        return self.shuffle(self.predict(self.act(self.reduce(feat))))
