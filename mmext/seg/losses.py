"""Location-aware losses of LaU (He et al., Eq. 3 and Eq. 4), for ``loss_decode``.

Both follow the official code (``LaU-reg/encoding/nn/customize.py``) exactly:

* computed at the LaU output resolution against the label nearest-resized to it
  (``LaUHead`` does that);
* per-pixel CE with ``reduction='none'`` is 0 at ignored pixels, and every mean is
  over **all** pixels, ignored ones included (``torch.mean(pred1_loss1)``, L151);
* Eq. 3 (offset-guided; the commented-out ``OffsetLosses`` of customize.py,
  L392-L397): weight ``1 + lambda`` where the LaU CE is *strictly greater* than the
  plain-bilinear CE, else 1 (a tie gets 1);
* Eq. 4 (regression; the active ``OffsetLosses``, L99-L156): candidates LaU, lt, lb,
  rt, rb in this order; a corner replaces the current best only if its CE is strictly
  lower (ties stay with the earlier candidate, LaU first); weight ``1 + lambda`` where
  the LaU CE is strictly above the best, else 1; ``gamma * SmoothL1(target offset,
  offset)`` with the SmoothL1 a mean over both coordinates and all pixels (L91, L149);
  where LaU is the best (and at ignored pixels, whose CEs are all 0) the target is the
  prediction itself (no pull).

Candidate losses are computed without gradient. ``avg_non_ignore=True`` (an mmseg-style
option, not the paper's) averages over the non-ignored pixels instead.
"""
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


def _mean(per_pixel: Tensor, label: Tensor, ignore_index: int,
          weight: Optional[Tensor], avg_non_ignore: bool) -> Tensor:
    """Mean of a per-pixel (N, H, W) or (N, ..., H, W) loss.

    Over all pixels (official), or over the non-ignored ones with ``avg_non_ignore``.
    ``weight`` (N, H, W) (mmseg's pixel sampler) multiplies each pixel.
    """
    n, hh, ww = label.shape
    per = per_pixel.reshape(n, -1, hh, ww)
    if weight is not None:
        per = per * weight.reshape(n, 1, hh, ww)
    if not avg_non_ignore:
        return per.mean()
    valid = (label != ignore_index)[:, None]
    # Zero (with a graph) when every pixel is ignored.
    return (per * valid).sum() / (valid.sum() * per.shape[1]).clamp(min=1)


def offset_guided_loss(lau_logits: Tensor, label: Tensor, plain_logits: Tensor,
                       lambda_: float = 0.3, ignore_index: int = 255,
                       class_weight: Optional[Tensor] = None,
                       weight: Optional[Tensor] = None,
                       avg_non_ignore: bool = False) -> Tensor:
    """Eq. 3: mean over pixels of ``w_i * CE_i``; ``w_i = 1 + lambda`` where the LaU
    CE is strictly greater than the plain-bilinear CE (no gradient), else 1.

    Args:
        lau_logits: (N, K, H, W) LaU output. label: (N, H, W).
        plain_logits: (N, K, H, W) plain upsampling of the same logits.
    """
    ce = _pixel_ce(lau_logits, label, ignore_index, class_weight)
    with torch.no_grad():
        ce_plain = _pixel_ce(plain_logits.detach().to(ce.dtype), label, ignore_index,
                             class_weight)
        w = 1.0 + lambda_ * (ce > ce_plain).to(ce.dtype)
    return _mean(w * ce, label, ignore_index, weight, avg_non_ignore)


def regression_targets(lau_logits: Tensor, label: Tensor, ctx,
                       ignore_index: int = 255,
                       class_weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Eq. 4's candidates: which of (LaU, lt, lb, rt, rb) has the lowest CE.

    Returns a dict (no gradient anywhere):
        ``index`` (N, H, W): 0 = the LaU position, 1..4 = lt, lb, rt, rb (ties go to
        the lower index, as the official strict ``torch.lt`` chain); ``lau_is_min``
        (N, H, W) bool; ``target`` (N, G, 2, H, W): target coordinate (row, col) per
        group (the predicted coordinate itself where LaU wins); ``candidate_ce``
        (5, N, H, W).
    """
    with torch.no_grad():
        ce_lau = _pixel_ce(lau_logits.detach(), label, ignore_index, class_weight)
        cands = [ce_lau]
        corners = ctx.corner_samples()
        for sampled, _ in corners:
            cands.append(_pixel_ce(sampled.to(ce_lau.dtype), label, ignore_index,
                                   class_weight))
        cand = torch.stack(cands)  # (5, N, H, W)
        index = cand.argmin(dim=0)  # first minimum: the strict-< chain's choice
        pred = ctx.pred_coords().detach()  # (N, G, 2, H, W)
        hh, ww = pred.shape[-2:]
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
                    avg_non_ignore: bool = False,
                    return_terms: bool = False):
    """Eq. 4: ``mean(w_i * CE_i) + gamma * mean(SmoothL1(target, predicted))``.

    ``w_i = 1`` where the LaU CE is the lowest of the five candidates, else
    ``1 + lambda``. The SmoothL1 (``beta``) mean runs over (N, G, 2, H, W): both
    coordinates, all groups and pixels. Predicted coordinates are not clamped.

    Returns the total, or with ``return_terms`` a dict ``ce`` (first term),
    ``smooth_l1`` (the SmoothL1 mean, before ``gamma``), ``targets``.
    """
    ce = _pixel_ce(lau_logits, label, ignore_index, class_weight)
    t = regression_targets(lau_logits, label, ctx, ignore_index, class_weight)
    w = 1.0 + lambda_ * (~t['lau_is_min']).to(ce.dtype)
    pred = ctx.pred_coords()
    smooth = F.smooth_l1_loss(pred, t['target'].to(pred.dtype), reduction='none',
                              beta=beta).to(ce.dtype)  # (N, G, 2, H, W)
    ce_term = _mean(w * ce, label, ignore_index, weight, avg_non_ignore)
    reg_term = _mean(smooth, label, ignore_index, weight, avg_non_ignore)
    if return_terms:
        return dict(ce=ce_term, smooth_l1=reg_term, targets=t)
    return ce_term + gamma * reg_term


class _LaULoss(nn.Module):
    """Common part: a ``loss_decode`` that needs the ``lau_ctx`` of ``LaUHead``."""
    needs_lau_context = True  # LaUHead passes lau_ctx=LaUContext

    def __init__(self, lambda_: float, loss_weight: float,
                 class_weight: Optional[Sequence[float]], avg_non_ignore: bool,
                 loss_name: str) -> None:
        super().__init__()
        if lambda_ < 0:
            raise LaUConfigError(f'{type(self).__name__}: lambda_ must be >= 0, got '
                                 f'{lambda_}')
        self.lambda_ = float(lambda_)
        self.loss_weight = float(loss_weight)
        self.class_weight: Optional[List[float]] = \
            list(class_weight) if class_weight is not None else None
        self.avg_non_ignore = bool(avg_non_ignore)
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
                f'{type(self).__name__} is a location-aware loss: it was called without '
                "lau_ctx, so it is the loss_decode of a head without LaU. Use "
                "dict(type='LaUHead', head='<the head type>', ...) or a plain loss such "
                'as CrossEntropyLoss')


@MODELS.register_module()
class LaUOffsetGuidedLoss(_LaULoss):
    """Offset-guided loss (Eq. 3). Official: ``lambda_=0.3`` (``--offset-weight``)."""

    def __init__(self, lambda_: float = 0.3, loss_weight: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 avg_non_ignore: bool = False,
                 loss_name: str = 'loss_lau_og') -> None:
        super().__init__(lambda_, loss_weight, class_weight, avg_non_ignore, loss_name)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight=None,
                ignore_index: int = 255, lau_ctx=None, **kwargs) -> Tensor:
        self._require_ctx(lau_ctx)
        return self.loss_weight * offset_guided_loss(
            seg_logits, seg_label, lau_ctx.plain_upsample(), self.lambda_,
            ignore_index, self._class_weight(seg_logits), weight, self.avg_non_ignore)


@MODELS.register_module()
class LaURegressionLoss(_LaULoss):
    """Regression loss (Eq. 4). Official: ``lambda_=0.3`` (``--offset-weight``),
    ``gamma=0.1`` (``--location-weight``), SmoothL1 ``beta=1``."""

    def __init__(self, lambda_: float = 0.3, gamma: float = 0.1, beta: float = 1.0,
                 loss_weight: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 avg_non_ignore: bool = False,
                 loss_name: str = 'loss_lau_reg') -> None:
        super().__init__(lambda_, loss_weight, class_weight, avg_non_ignore, loss_name)
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
            ignore_index, self._class_weight(seg_logits), weight, self.avg_non_ignore)
