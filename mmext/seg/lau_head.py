"""LaU on top of any mmseg decode head, by config.

Design: a *mixin* (:class:`LaUMixin`) placed in front of the head's own class. The
config names the head it wraps::

    decode_head=dict(type='LaUHead', head='ASPPHead',      # was type='ASPPHead'
                     lau_factor=4, lau_groups=1,
                     ... every other key of the ASPPHead config unchanged ...,
                     loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss'))

``LaUHead`` builds (and caches) the class ``LaU<Head>(LaUMixin, <Head>)``. Because the
head keeps its own class, attribute names and state-dict keys, a LaU config differs
from its bilinear baseline only in these lines, and a baseline checkpoint loads into
the LaU model (only ``lau_offset_branch.*`` is new). ``head`` may also be a dict
(``head=dict(type='ASPPHead', ...)``, wrapper style): its keys are merged under the
outer ones.

How the pieces travel:

* the feature that feeds the classifier is captured in :meth:`LaUMixin.cls_seg`
  (before dropout) and fed to the offset branch;
* :meth:`LaUMixin.lau_upsample` applies :func:`mmext.ops.location_aware_upsample` to
  the head's low-resolution logits with ``offsets = base + learned``;
* training: :meth:`loss` computes every ``loss_decode`` at the LaU output resolution
  against the label nearest-resized to it; location-aware losses get a
  :class:`LaUContext` (low-res logits, learned offsets, base coordinates) through the
  ``lau_ctx`` keyword, from which they compute their candidates without gradient;
* prediction: LaU output, then the usual bilinear resize to the input size
  (``BaseDecodeHead.predict_by_feat``).

Base coordinates: output pixel i samples row ``i / k + dy`` (the operator's convention).
With ``lau_base_coords='interpolate'`` (default) a fixed, non-learned base offset is
added so that zero learned offsets reproduce exactly what the head did before:
``F.interpolate(mode='bilinear', align_corners=head.align_corners)``. With
``'paper'`` the base offset is 0 (the paper's i/k grid). The offset-guided loss's
"plain bilinear" candidate is always LaU with zero learned offsets.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.registry import MODELS
from torch import Tensor

from mmext.ops import location_aware_upsample

from .errors import LaUConfigError

_BASE_COORDS = ('interpolate', 'paper')


def base_offsets(h: int, w: int, k: int, mode: str, align_corners: bool,
                 device=None, dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """Fixed (dy over rows, dx over columns) added to learned offsets.

    Returns 1-D tensors of length k*h and k*w: ``base_y[i] = src(i) - i / k`` where
    ``src`` is F.interpolate's source coordinate ('interpolate') or ``i / k``
    ('paper', all zeros).
    """

    def axis(n: int) -> Tensor:
        i = torch.arange(k * n, device=device, dtype=torch.float64)
        if mode == 'paper':
            src = i / k
        elif align_corners:
            src = i * (n - 1) / max(k * n - 1, 1)
        else:
            src = (i + 0.5) / k - 0.5
        return (src - i / k).to(dtype)

    return axis(h), axis(w)


@dataclass
class LaUContext:
    """What a location-aware loss needs besides the LaU output.

    Attributes:
        logits: (N, C, h, w) low-resolution logits (the LaU input).
        offsets: (N, 2G, k*h, k*w) learned offsets (with gradient).
        base_y, base_x: (k*h,), (k*w,) fixed base offsets (see :func:`base_offsets`).
        scale_factor: k.
        groups: G.
    """
    logits: Tensor
    offsets: Tensor
    base_y: Tensor
    base_x: Tensor
    scale_factor: int
    groups: int

    def base_coords(self) -> Tuple[Tensor, Tensor]:
        """Plain (zero-learned-offset) sampling coordinates, (k*h,) and (k*w,)."""
        k = self.scale_factor
        ys = torch.arange(self.base_y.numel(), device=self.base_y.device,
                          dtype=self.base_y.dtype) / k + self.base_y
        xs = torch.arange(self.base_x.numel(), device=self.base_x.device,
                          dtype=self.base_x.dtype) / k + self.base_x
        return ys, xs

    def pred_coords(self) -> Tensor:
        """Predicted (unclamped) coordinates (N, G, 2, k*h, k*w), with gradient."""
        n, _, hh, ww = self.offsets.shape
        ys, xs = self.base_coords()
        base = torch.stack([ys[:, None].expand(hh, ww), xs[None, :].expand(hh, ww)])
        return self.offsets.view(n, self.groups, 2, hh, ww) + base

    def full_offsets(self, learned: Optional[Tensor] = None) -> Tensor:
        """Offsets for the operator: learned (default: ``self.offsets``) + base."""
        learned = self.offsets if learned is None else learned
        n, _, hh, ww = learned.shape
        base = torch.stack([self.base_y[:, None].expand(hh, ww),
                            self.base_x[None, :].expand(hh, ww)])
        return (learned.view(n, self.groups, 2, hh, ww) + base).view(n, -1, hh, ww)

    def plain_upsample(self) -> Tensor:
        """LaU with zero learned offsets (the 'bilinear' candidate), no gradient."""
        with torch.no_grad():
            zeros = torch.zeros_like(self.offsets)
            return location_aware_upsample(self.logits.detach(), self.full_offsets(zeros),
                                           self.scale_factor)

    def corner_samples(self) -> List[Tuple[Tensor, Tuple[Tensor, Tensor]]]:
        """The 4 nearest-corner samplings lt, lb, rt, rb of the plain coordinate.

        Returns [(logits (N, C, k*h, k*w) without gradient, (row (k*h,), col (k*w,)))].
        Rows/columns are floor/ceil of the plain coordinate clamped to the map.
        """
        h, w = self.logits.shape[-2:]
        ys, xs = self.base_coords()
        y0 = ys.floor().clamp(0, h - 1)
        y1 = ys.ceil().clamp(0, h - 1)
        x0 = xs.floor().clamp(0, w - 1)
        x1 = xs.ceil().clamp(0, w - 1)
        logits = self.logits.detach()
        out = []
        for ry, rx in ((y0, x0), (y1, x0), (y0, x1), (y1, x1)):
            sampled = logits.index_select(2, ry.long()).index_select(3, rx.long())
            out.append((sampled, (ry, rx)))
        return out


class LaUMixin:
    """Put LaU on top of a ``BaseDecodeHead`` subclass (see the module docstring).

    Args (besides the head's own):
        lau_factor: k (int).
        lau_groups: G offset groups; must divide the number of output channels.
        lau_offset_branch: config of the offset branch (default
            ``dict(type='LaUOffsetBranch', mid_channels=128)``); ``in_channels``,
            ``scale_factor`` and ``groups`` are filled in (and checked if given).
        lau_base_coords: 'interpolate' (default) or 'paper'.
    """

    def __init__(self, *args: Any, lau_factor: int = 4, lau_groups: int = 1,
                 lau_offset_branch: Optional[dict] = None,
                 lau_base_coords: str = 'interpolate', **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if isinstance(lau_factor, bool) or not isinstance(lau_factor, int) \
                or lau_factor < 1:
            raise LaUConfigError(f'{name}: lau_factor must be an integer >= 1, got '
                                 f'{lau_factor!r}')
        if isinstance(lau_groups, bool) or not isinstance(lau_groups, int) \
                or lau_groups < 1 or self.out_channels % lau_groups:
            raise LaUConfigError(
                f'{name}: lau_groups={lau_groups!r} must be a positive divisor of the '
                f'number of classes (out_channels={self.out_channels}); G=1 shares one '
                'offset pair by all classes')
        if lau_base_coords not in _BASE_COORDS:
            raise LaUConfigError(f'{name}: lau_base_coords must be one of {_BASE_COORDS}, '
                                 f'got {lau_base_coords!r}')
        self.lau_factor = lau_factor
        self.lau_groups = lau_groups
        self.lau_base_coords = lau_base_coords

        cfg = dict(type='LaUOffsetBranch', mid_channels=128)
        cfg.update(lau_offset_branch or {})
        for key, value in (('in_channels', self.channels), ('scale_factor', lau_factor),
                           ('groups', lau_groups)):
            if key in cfg and cfg[key] != value:
                raise LaUConfigError(
                    f'{name}: lau_offset_branch.{key}={cfg[key]!r} does not match the '
                    f'head ({key} must be {value}: '
                    + ('the channels of the feature that feeds the classifier)'
                       if key == 'in_channels' else f'lau_{key.split("_")[0]})')
                    + '; leave it out and it is filled in')
            cfg[key] = value
        self.lau_offset_branch = MODELS.build(cfg)
        self._check_offset_branch()
        self._lau_feat: Optional[Tensor] = None

    def _check_offset_branch(self) -> None:
        """Dry-run the offset branch: its output must be (N, 2G, k*h, k*w)."""
        k, g = self.lau_factor, self.lau_groups
        was_training = self.lau_offset_branch.training
        self.lau_offset_branch.eval()
        try:
            with torch.no_grad():
                probe = next(self.lau_offset_branch.parameters(), None)
                kw = {} if probe is None else dict(dtype=probe.dtype, device=probe.device)
                out = self.lau_offset_branch(torch.zeros(1, self.channels, 3, 2, **kw))
        except Exception as exc:  # noqa: BLE001  (reported as a config error)
            raise LaUConfigError(
                f'{type(self).__name__}: the offset branch fails on a feature with '
                f'{self.channels} channels (the input of conv_seg): {exc}') from exc
        finally:
            self.lau_offset_branch.train(was_training)
        expected = (1, 2 * g, 3 * k, 2 * k)
        if tuple(out.shape) != expected:
            raise LaUConfigError(
                f'{type(self).__name__}: the offset branch must output (N, 2G, k*h, k*w) '
                f'= {expected} for a (1, {self.channels}, 3, 2) feature with '
                f'lau_factor={k}, lau_groups={g}; it gives {tuple(out.shape)}')

    # -- the classifier's input ----------------------------------------------------
    def cls_seg(self, feat: Tensor) -> Tensor:
        self._lau_feat = feat
        return super().cls_seg(feat)

    # -- upsampling ----------------------------------------------------------------
    def lau_upsample(self, logits: Tensor, feat: Tensor) -> Tuple[Tensor, LaUContext]:
        """LaU of ``logits`` with offsets predicted from ``feat``."""
        offsets = self.lau_offset_branch(feat).to(logits.dtype)
        h, w = logits.shape[-2:]
        if feat.shape[-2:] != (h, w):
            raise RuntimeError(
                f'{type(self).__name__}: the classifier input {tuple(feat.shape)} and the '
                f'logits {tuple(logits.shape)} differ in size; this head does not fit LaU')
        base_y, base_x = base_offsets(h, w, self.lau_factor, self.lau_base_coords,
                                      self.align_corners, logits.device, logits.dtype)
        ctx = LaUContext(logits, offsets, base_y, base_x, self.lau_factor,
                         self.lau_groups)
        out = location_aware_upsample(logits, ctx.full_offsets(), self.lau_factor)
        return out, ctx

    def _lau_forward(self, inputs) -> Tuple[Tensor, LaUContext, tuple]:
        self._lau_feat = None
        out = super().forward(inputs)
        logits, extra = (out[0], tuple(out[1:])) if isinstance(out, (tuple, list)) \
            else (out, ())
        feat, self._lau_feat = self._lau_feat, None
        if feat is None:
            raise RuntimeError(
                f'{type(self).__name__}: the head never called cls_seg, so LaU has no '
                'feature for its offset branch; this head type is not supported')
        up, ctx = self.lau_upsample(logits, feat)
        return up, ctx, extra

    def forward(self, inputs):
        """LaU-upsampled logits (plus the head's extra outputs, e.g. EncHead's SE)."""
        up, _, extra = self._lau_forward(inputs)
        return (up, *extra) if extra else up

    # -- training ------------------------------------------------------------------
    def loss(self, inputs, batch_data_samples, train_cfg) -> Dict[str, Tensor]:
        up, ctx, extra = self._lau_forward(inputs)
        return self.lau_loss_by_feat(up, ctx, batch_data_samples, extra)

    def lau_loss_by_feat(self, seg_logits: Tensor, ctx: LaUContext,
                         batch_data_samples, extra: tuple = ()) -> Dict[str, Tensor]:
        """Every ``loss_decode`` at the LaU output resolution (label nearest-resized)."""
        full_label = self._stack_batch_gt(batch_data_samples)
        seg_label = F.interpolate(full_label.float(), size=seg_logits.shape[-2:],
                                  mode='nearest').long()
        seg_weight = self.sampler.sample(seg_logits, seg_label) \
            if self.sampler is not None else None
        seg_label = seg_label.squeeze(1)
        losses_decode = self.loss_decode if isinstance(self.loss_decode,
                                                       torch.nn.ModuleList) \
            else [self.loss_decode]
        loss: Dict[str, Tensor] = {}
        for loss_decode in losses_decode:
            kwargs = dict(weight=seg_weight, ignore_index=self.ignore_index)
            if getattr(loss_decode, 'needs_lau_context', False):
                kwargs['lau_ctx'] = ctx
            value = loss_decode(seg_logits, seg_label, **kwargs)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = accuracy(seg_logits, seg_label, ignore_index=self.ignore_index)
        if extra:
            loss.update(self._extra_losses(extra, full_label))
        return loss

    def _extra_losses(self, extra: tuple, full_label: Tensor) -> Dict[str, Tensor]:
        from mmseg.models.decode_heads import EncHead
        if isinstance(self, EncHead) and len(extra) == 1:
            onehot = self._convert_to_onehot_labels(full_label, self.num_classes)
            return dict(loss_se=self.loss_se_decode(extra[0], onehot))
        raise RuntimeError(
            f'{type(self).__name__}: the head returns {len(extra) + 1} outputs; LaU '
            'supports heads returning logits (and EncHead with its SE output)')

    # -- prediction ----------------------------------------------------------------
    def predict(self, inputs, batch_img_metas: List[dict], test_cfg) -> Tensor:
        """LaU output, then the usual bilinear resize to the input size."""
        up, _, _ = self._lau_forward(inputs)
        return self.predict_by_feat(up, batch_img_metas)

    def predict_offsets(self, inputs) -> Tuple[Tensor, Tensor, LaUContext]:
        """(LaU logits, plain-upsampled logits, context): for visualisation."""
        up, ctx, _ = self._lau_forward(inputs)
        return up, ctx.plain_upsample(), ctx


_CLASSES: Dict[type, type] = {}


def lau_head_class(head_cls: Type[BaseDecodeHead]) -> type:
    """The class ``LaU<Head>(LaUMixin, Head)`` (created once per head class)."""
    if isinstance(head_cls, type) and issubclass(head_cls, LaUMixin):
        return head_cls
    if not (isinstance(head_cls, type) and issubclass(head_cls, BaseDecodeHead)):
        raise LaUConfigError(
            f'LaUHead: head must be an mmseg decode head (a BaseDecodeHead subclass), '
            f'got {head_cls!r}')
    if head_cls not in _CLASSES:
        name = f'LaU{head_cls.__name__}'
        cls = type(name, (LaUMixin, head_cls), {
            '__module__': __name__,
            '__doc__': f'{head_cls.__name__} whose final upsampling is LaU '
                       '(see mmext.seg.lau_head.LaUMixin).'})
        globals()[name] = cls  # picklable by reference
        _CLASSES[head_cls] = cls
    return _CLASSES[head_cls]


def LaUHead(head: Any = None, **kwargs: Any) -> BaseDecodeHead:  # noqa: N802
    """Build ``head`` (a type name, class or config dict) with LaU on top.

    ``LaUHead(head='ASPPHead', lau_factor=4, **aspp_kwargs)`` or
    ``LaUHead(head=dict(type='ASPPHead', **aspp_kwargs), lau_factor=4)``.
    """
    if head is None:
        raise LaUConfigError("LaUHead needs head=<decode head type>, e.g. "
                             "dict(type='LaUHead', head='ASPPHead', ...)")
    if isinstance(head, dict):
        head = dict(head)
        head_type = head.pop('type', None)
        if head_type is None:
            raise LaUConfigError('LaUHead: head=dict(...) needs a type')
        kwargs = {**head, **kwargs}
    else:
        head_type = head
    head_cls = MODELS.get(head_type) if isinstance(head_type, str) else head_type
    if head_cls is None:
        raise LaUConfigError(f"LaUHead: unknown head type '{head_type}' in mmseg's "
                             'MODELS registry')
    return lau_head_class(head_cls)(**kwargs)


MODELS.register_module('LaUHead', module=LaUHead)


@MODELS.register_module()
class LaUSepASPPHead(LaUMixin, DepthwiseSeparableASPPHead):
    """DeepLabV3+ whose decoder upsampler (the x4 of the decoder's stride-4 logits to
    the input) is LaU: the paper's PASCAL VOC setting. Use ``lau_factor=4``.

    Same as ``dict(type='LaUHead', head='DepthwiseSeparableASPPHead')``, under a name.
    """


_CLASSES[DepthwiseSeparableASPPHead] = LaUSepASPPHead
