"""Location-aware losses of LaU (He et al., Eq. 3 and Eq. 4), for ``loss_decode``.

Both are computed at the LaU output resolution against the label nearest-resized to
it (the LaU head does this) and average over the non-ignored pixels: an ignored pixel
is in neither the numerator nor the denominator. Candidate losses (plain bilinear,
nearest corners) are computed without gradient.

They need a LaU head (``dict(type='LaUHead', ...)`` or ``LaUSepASPPHead``): that head
passes them a :class:`~mmext.seg.lau_head.LaUContext` as ``lau_ctx``. Put in a plain
head's ``loss_decode`` they refuse at build time.
"""
import sys
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from .errors import LaUConfigError


def _pixel_ce(logits: Tensor, label: Tensor, ignore_index: int,
              class_weight: Optional[Tensor]) -> Tensor:
    """Per-pixel cross-entropy (N, H, W); 0 at ignored pixels."""
    return F.cross_entropy(logits, label, weight=class_weight, reduction='none',
                           ignore_index=ignore_index)


def _valid_mean(per_pixel: Tensor, label: Tensor, ignore_index: int,
                weight: Optional[Tensor]) -> Tensor:
    valid = label != ignore_index
    if weight is not None:
        per_pixel = per_pixel * weight.view_as(per_pixel)
    # Zero (with a graph) when every pixel is ignored.
    return (per_pixel * valid).sum() / valid.sum().clamp(min=1)


def offset_guided_loss(lau_logits: Tensor, label: Tensor, plain_logits: Tensor,
                       lambda_: float = 0.3, ignore_index: int = 255,
                       class_weight: Optional[Tensor] = None,
                       weight: Optional[Tensor] = None) -> Tensor:
    """Eq. 3: mean over valid pixels of ``w_i * CE_i``, ``w_i = 1`` where the LaU
    CE is lower than the plain-bilinear CE (no gradient), else ``1 + lambda``."""
    ce = _pixel_ce(lau_logits, label, ignore_index, class_weight)
    with torch.no_grad():
        ce_plain = _pixel_ce(plain_logits.detach().to(ce.dtype), label, ignore_index,
                             class_weight)
        w = torch.where(ce < ce_plain, 1.0, 1.0 + lambda_).to(ce.dtype)
    return _valid_mean(w * ce, label, ignore_index, weight)


def regression_targets(lau_logits: Tensor, label: Tensor, ctx,
                       ignore_index: int = 255,
                       class_weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Eq. 4's candidates: which of (LaU, lt, lb, rt, rb) has the lowest CE.

    Returns a dict (no gradient anywhere):
        ``index`` (N, H, W): 0 = the LaU position, 1..4 = lt, lb, rt, rb (ties go to
        the lower index, so LaU wins a tie); ``lau_is_min`` (N, H, W) bool;
        ``target`` (N, G, 2, H, W): target coordinate (row, col) per group (the
        predicted coordinate itself where LaU wins); ``candidate_ce`` (5, N, H, W).
    """
    with torch.no_grad():
        ce_lau = _pixel_ce(lau_logits.detach(), label, ignore_index, class_weight)
        cands = [ce_lau]
        corners = ctx.corner_samples()
        for sampled, _ in corners:
            cands.append(_pixel_ce(sampled.to(ce_lau.dtype), label, ignore_index,
                                   class_weight))
        cand = torch.stack(cands)  # (5, N, H, W)
        index = cand.argmin(dim=0)
        pred = ctx.pred_coords().detach()  # (N, G, 2, H, W)
        n, g, _, hh, ww = pred.shape
        target = pred.clone()
        for c, (_, (ry, rx)) in enumerate(corners, start=1):
            corner = torch.stack([ry[:, None].expand(hh, ww), rx[None, :].expand(hh, ww)])
            mask = (index == c)[:, None, None]  # (N, 1, 1, H, W)
            target = torch.where(mask, corner.to(target.dtype), target)
    return dict(index=index, lau_is_min=index == 0, target=target, candidate_ce=cand)


def regression_loss(lau_logits: Tensor, label: Tensor, ctx, lambda_: float = 0.3,
                    gamma: float = 0.1, beta: float = 1.0, ignore_index: int = 255,
                    class_weight: Optional[Tensor] = None,
                    weight: Optional[Tensor] = None,
                    return_terms: bool = False):
    """Eq. 4: mean over valid pixels of
    ``gamma * SmoothL1(target, predicted coordinate) + w_i * CE_i``,
    ``w_i = 1`` where the LaU CE is the lowest of the five candidates, else
    ``1 + lambda``. SmoothL1 (``beta``) is summed over (row, col) and averaged over
    the G groups; the predicted coordinate is not clamped, so offsets that leave the
    map are pulled back too."""
    ce = _pixel_ce(lau_logits, label, ignore_index, class_weight)
    t = regression_targets(lau_logits, label, ctx, ignore_index, class_weight)
    w = torch.where(t['lau_is_min'], 1.0, 1.0 + lambda_).to(ce.dtype)
    pred = ctx.pred_coords()
    smooth = F.smooth_l1_loss(pred, t['target'].to(pred.dtype), reduction='none',
                              beta=beta).sum(dim=2).mean(dim=1).to(ce.dtype)
    ce_term = _valid_mean(w * ce, label, ignore_index, weight)
    reg_term = _valid_mean(smooth, label, ignore_index, weight)
    if return_terms:
        return dict(ce=ce_term, smooth_l1=reg_term, targets=t)
    return ce_term + gamma * reg_term


def _check_inside_lau_head(loss: nn.Module) -> None:
    """Refuse, at build time, to be a loss of a decode head without LaU.

    The head that is building us is found on the call stack (mmseg builds
    ``loss_decode`` inside ``BaseDecodeHead.__init__``). Built anywhere else (tests,
    user code) nothing is checked here; the call then needs ``lau_ctx``.
    """
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    from .lau_head import LaUMixin
    frame = sys._getframe(1)
    for _ in range(64):
        if frame is None:
            return
        owner = frame.f_locals.get('self')
        if isinstance(owner, BaseDecodeHead):
            if not isinstance(owner, LaUMixin):
                raise LaUConfigError(
                    f'{type(loss).__name__} is a location-aware loss: it needs a LaU '
                    f'head, but {type(owner).__name__} has none. Use '
                    f"dict(type='LaUHead', head='{type(owner).__name__}', ...) (or "
                    "LaUSepASPPHead), or a plain loss such as CrossEntropyLoss")
            return
        frame = frame.f_back


class _LaULoss(nn.Module):
    needs_lau_context = True  # the LaU head passes lau_ctx=LaUContext

    def __init__(self, lambda_: float, loss_weight: float,
                 class_weight: Optional[Sequence[float]], loss_name: str) -> None:
        super().__init__()
        if lambda_ < 0:
            raise LaUConfigError(f'{type(self).__name__}: lambda_ must be >= 0, got '
                                 f'{lambda_}')
        _check_inside_lau_head(self)
        self.lambda_ = float(lambda_)
        self.loss_weight = float(loss_weight)
        self.class_weight: Optional[List[float]] = \
            list(class_weight) if class_weight is not None else None
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def _class_weight(self, logits: Tensor) -> Optional[Tensor]:
        if self.class_weight is None:
            return None
        return logits.new_tensor(self.class_weight)

    def _require_ctx(self, lau_ctx) -> None:
        if lau_ctx is None:
            raise LaUConfigError(
                f'{type(self).__name__} was called without lau_ctx: it must be a '
                "loss_decode of a LaU head (dict(type='LaUHead', head=...))")


@MODELS.register_module()
class LaUOffsetGuidedLoss(_LaULoss):
    """Offset-guided loss (Eq. 3). Paper: ``lambda_=0.3``."""

    def __init__(self, lambda_: float = 0.3, loss_weight: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_name: str = 'loss_lau_og') -> None:
        super().__init__(lambda_, loss_weight, class_weight, loss_name)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight=None,
                ignore_index: int = 255, lau_ctx=None, **kwargs) -> Tensor:
        self._require_ctx(lau_ctx)
        return self.loss_weight * offset_guided_loss(
            seg_logits, seg_label, lau_ctx.plain_upsample(), self.lambda_,
            ignore_index, self._class_weight(seg_logits), weight)


@MODELS.register_module()
class LaURegressionLoss(_LaULoss):
    """Regression loss (Eq. 4). Paper: ``lambda_=0.3``, ``gamma=0.1``."""

    def __init__(self, lambda_: float = 0.3, gamma: float = 0.1, beta: float = 1.0,
                 loss_weight: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_name: str = 'loss_lau_reg') -> None:
        super().__init__(lambda_, loss_weight, class_weight, loss_name)
        if gamma < 0 or beta <= 0:
            raise LaUConfigError(f'LaURegressionLoss: need gamma >= 0 and beta > 0, got '
                                 f'gamma={gamma}, beta={beta}')
        self.gamma = float(gamma)
        self.beta = float(beta)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight=None,
                ignore_index: int = 255, lau_ctx=None, **kwargs) -> Tensor:
        self._require_ctx(lau_ctx)
        return self.loss_weight * regression_loss(
            seg_logits, seg_label, lau_ctx, self.lambda_, self.gamma, self.beta,
            ignore_index, self._class_weight(seg_logits), weight)
