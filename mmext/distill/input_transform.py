"""Re-normalise the student's input for a teacher trained with another normalisation.

Both detectors take the same batch, normalised by the student's data preprocessor.
A teacher trained on other mean/std or channel order (e.g. a caffe-style BGR FCOS
student under an ImageNet-RGB Swin teacher) would otherwise see inputs unlike any it
was trained on. Where the two preprocessors agree (every authors' pair) this is the
identity and the teacher gets the student's tensor itself, as in MMRazor.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor


def preprocessor_norm(pre: nn.Module) -> Tuple[Optional[Tensor], Optional[Tensor], bool]:
    """(mean, std, swaps channels) of an mmdet ``DetDataPreprocessor``.

    mean/std are (3, 1, 1) float tensors, or None when it does not normalise. The
    attributes read are set by mmengine's ``ImgDataPreprocessor`` (no public getter).
    """
    if getattr(pre, '_enable_normalize', False):
        mean, std = pre.mean.detach().clone().float(), pre.std.detach().clone().float()
    else:
        mean = std = None
    return mean, std, bool(getattr(pre, '_channel_conversion', False))


class TeacherInputTransform(nn.Module):
    """Student-normalised (N, 3, H, W) input -> the same images normalised for the
    teacher: ``raw = x * std_s + mean_s`` (channel order flipped if exactly one
    side swaps BGR/RGB), then ``(raw - mean_t) / std_t``.

    ``identity`` is True when both preprocessors normalise alike; ``forward`` then
    returns its input unchanged. The statistics are non-persistent buffers (moved by
    ``to()``, never saved).
    """

    def __init__(self, student_pre: nn.Module, teacher_pre: nn.Module) -> None:
        super().__init__()
        s_mean, s_std, s_swap = preprocessor_norm(student_pre)
        t_mean, t_std, t_swap = preprocessor_norm(teacher_pre)
        self.identity = s_swap == t_swap and (s_mean is None) == (t_mean is None) and (
            s_mean is None or (torch.allclose(s_mean, t_mean)
                               and torch.allclose(s_std, t_std)))
        self.swap_channels = s_swap != t_swap
        zero, one = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
        for name, value in (('s_mean', s_mean if s_mean is not None else zero),
                            ('s_std', s_std if s_std is not None else one),
                            ('t_mean', t_mean if t_mean is not None else zero),
                            ('t_std', t_std if t_std is not None else one)):
            self.register_buffer(name, value, persistent=False)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.identity:
            return inputs
        raw = inputs * self.s_std + self.s_mean
        if self.swap_channels:
            raw = raw.flip(1)
        return (raw - self.t_mean) / self.t_std
