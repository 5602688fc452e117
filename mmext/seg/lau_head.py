"""LaU on top of any mmseg decode head, by config: the wrapper head ``LaUHead``.

``LaUHead`` owns three parts, by ordinary composition:

* ``head``: the decode head it wraps (any mmseg ``BaseDecodeHead``), built from the
  same config keys as before (``head`` names its type);
* ``offset_branch``: the offset predictor (:class:`~mmext.seg.LaUOffsetBranch`), fed
  by the feature that feeds the head's classifier;
* the upsampling: :func:`mmext.ops.location_aware_upsample` of the head's
  low-resolution logits.

Config (a LaU config differs from its bilinear baseline in these lines only)::

    decode_head=dict(type='LaUHead', head='EncHead',      # was type='EncHead'
                     lau_factor=4,
                     ... every other key of the EncHead config unchanged ...,
                     loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss'))

The classifier's input comes from :func:`split_head_forward`: the head's own
``_forward_feature`` (mmseg's convention for "the feature before ``cls_seg``"), or,
for heads without one (EncHead, DepthwiseSeparableASPPHead), a feature function
registered in :data:`FEATURE_FUNCTIONS` (tested equal to the head's ``forward``).

Training: every ``loss_decode`` of the wrapper is computed at the LaU output
resolution against the label nearest-resized to it (as the official code does);
location-aware losses also get a :class:`LaUContext` (``lau_ctx`` keyword).
Prediction: LaU output, then the head's ``predict_by_feat`` (bilinear resize to the
input size).

Base coordinates: output pixel i samples row ``i / k + dy`` (the paper's grid and the
operator's convention; ``lau_base_coords='paper'``, default). ``'interpolate'`` (an
option of ours) adds a fixed base offset so that zero learned offsets reproduce
``F.interpolate(bilinear, align_corners=head.align_corners)``.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, EncHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from mmext.ops import location_aware_upsample

from .errors import LaUConfigError

_BASE_COORDS = ('paper', 'interpolate')


def base_offsets(h: int, w: int, k: int, mode: str, align_corners: bool,
                 device=None, dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """Fixed (dy over rows, dx over columns) added to learned offsets.

    Returns 1-D tensors of length k*h and k*w: ``base_y[i] = src(i) - i / k`` where
    ``src`` is ``i / k`` ('paper': all zeros) or F.interpolate's source coordinate
    ('interpolate').
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


@dataclass(frozen=True)
class LaUContext:
    """What a location-aware loss needs besides the LaU output (one per forward).

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
        """LaU with zero learned offsets (Eq. 3's 'bilinear' candidate), no gradient."""
        with torch.no_grad():
            zeros = torch.zeros_like(self.offsets)
            return location_aware_upsample(self.logits.detach(), self.full_offsets(zeros),
                                           self.scale_factor)

    def corner_samples(self) -> List[Tuple[Tensor, Tuple[Tensor, Tensor]]]:
        """Eq. 4's corner candidates lt, lb, rt, rb (the official order).

        Returns [(logits (N, C, k*h, k*w) without gradient, (row (k*h,), col (k*w,)))]:
        floor/ceil of the plain coordinate, clamped to the map (as the official
        ``ldu_micro_bilinear_multi_output`` kernel samples them).
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


# -- the classifier's input ------------------------------------------------------------
HeadSplit = Tuple[Tensor, Tensor, Tuple[Tensor, ...]]  # (feature, logits, extra outputs)


def _enc_head_split(head: EncHead, inputs: Sequence[Tensor]) -> HeadSplit:
    """EncHead.forward (mmseg 1.2) up to cls_seg: the EncModule output, as the
    official code's offset input (``encnet.py:L143-L145``)."""
    # Private, but the head's own input selection (in_index / input_transform);
    # mmseg has no public form of it, and re-implementing it could drift.
    inputs = head._transform_inputs(inputs)
    feat = head.bottleneck(inputs[-1])
    if head.add_lateral:
        laterals = [
            resize(lateral_conv(inputs[i]), size=feat.shape[2:], mode='bilinear',
                   align_corners=head.align_corners)
            for i, lateral_conv in enumerate(head.lateral_convs)
        ]
        feat = head.fusion(torch.cat([feat, *laterals], 1))
    encode_feat, output = head.enc_module(feat)
    logits = head.cls_seg(output)
    extra = (head.se_layer(encode_feat), ) if head.use_se_loss else ()
    return output, logits, extra


def _sep_aspp_split(head: DepthwiseSeparableASPPHead,
                    inputs: Sequence[Tensor]) -> HeadSplit:
    """DepthwiseSeparableASPPHead.forward (mmseg 1.2) up to cls_seg: the decoder's
    stride-4 feature."""
    x = head._transform_inputs(inputs)  # private: see _enc_head_split
    aspp_outs = [resize(head.image_pool(x), size=x.size()[2:], mode='bilinear',
                        align_corners=head.align_corners)]
    aspp_outs.extend(head.aspp_modules(x))
    output = head.bottleneck(torch.cat(aspp_outs, dim=1))
    if head.c1_bottleneck is not None:
        c1_output = head.c1_bottleneck(inputs[0])
        output = resize(output, size=c1_output.shape[2:], mode='bilinear',
                        align_corners=head.align_corners)
        output = torch.cat([output, c1_output], dim=1)
    feat = head.sep_bottleneck(output)
    return feat, head.cls_seg(feat), ()


def _forward_feature_split(head: BaseDecodeHead, inputs: Sequence[Tensor]) -> HeadSplit:
    # mmseg 1.x heads expose "the feature before cls_seg" as _forward_feature (the
    # only way to reach it without re-implementing their forward).
    feat = head._forward_feature(inputs)
    return feat, head.cls_seg(feat), ()


#: Heads without ``_forward_feature``: exact class -> split function. Add an entry
#: (or give the head a ``_forward_feature``) to put LaU on another such head.
FEATURE_FUNCTIONS: Dict[type, Callable[[Any, Sequence[Tensor]], HeadSplit]] = {
    EncHead: _enc_head_split,
    DepthwiseSeparableASPPHead: _sep_aspp_split,
}


def _split_function(head_cls: type) -> Callable[[Any, Sequence[Tensor]], HeadSplit]:
    if head_cls in FEATURE_FUNCTIONS:
        return FEATURE_FUNCTIONS[head_cls]
    if callable(getattr(head_cls, '_forward_feature', None)):
        return _forward_feature_split
    raise LaUConfigError(
        f'LaUHead: {head_cls.__name__} has no _forward_feature (the feature before '
        'cls_seg) and no entry in mmext.seg.lau_head.FEATURE_FUNCTIONS; add one of the '
        'two to put LaU on it')


def split_head_forward(head: BaseDecodeHead, inputs: Sequence[Tensor]) -> HeadSplit:
    """(classifier input (N, C', h, w), logits (N, K, h, w), extra outputs)."""
    return _split_function(type(head))(head, inputs)


# -- the wrapper head ----------------------------------------------------------------
def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LaUConfigError(f'LaUHead: {name} must be an integer >= 1, got {value!r}')


@MODELS.register_module()
class LaUHead(BaseModule):
    """A decode head whose final upsampling is LaU (see the module docstring).

    Args:
        head: the wrapped decode head: a type name (the other keyword arguments,
            except the ``lau_*`` ones and ``loss_decode``, are its config) or a
            full config dict.
        lau_factor: k (int).
        lau_groups: G offset groups; must divide the number of classes.
        lau_offset_branch: offset branch config (default
            ``dict(type='LaUOffsetBranch', mid_channels=128)``, the authors' branch);
            ``in_channels``, ``scale_factor`` and ``groups`` are filled in.
        lau_base_coords: 'paper' (default, i/k) or 'interpolate'.
        loss_decode: the losses computed at the LaU resolution (a dict or list).
        **head_kwargs: the wrapped head's config.

    Shapes: ``forward(inputs)`` -> (N, K, k*h, k*w) LaU logits (EncHead with SE
    loss: a tuple (logits, se_logits) as EncHead returns).
    """

    def __init__(self,
                 head: Any = None,
                 lau_factor: int = 4,
                 lau_groups: int = 1,
                 lau_offset_branch: Optional[dict] = None,
                 lau_base_coords: str = 'paper',
                 loss_decode: Any = dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=1.0),
                 init_cfg: Optional[dict] = None,
                 **head_kwargs: Any) -> None:
        super().__init__(init_cfg)
        self.head = self._build_head(head, head_kwargs)
        _check_int('lau_factor', lau_factor)
        _check_int('lau_groups', lau_groups)
        if self.head.out_channels % lau_groups:
            raise LaUConfigError(
                f'LaUHead: lau_groups={lau_groups} must be a positive divisor of the '
                f'number of classes (out_channels={self.head.out_channels}); G=1 shares '
                'one offset pair by all classes')
        if lau_base_coords not in _BASE_COORDS:
            raise LaUConfigError(f'LaUHead: lau_base_coords must be one of '
                                 f'{_BASE_COORDS}, got {lau_base_coords!r}')
        self._split = _split_function(type(self.head))
        self.lau_factor = lau_factor
        self.lau_groups = lau_groups
        self.lau_base_coords = lau_base_coords
        self.offset_branch = self._build_offset_branch(lau_offset_branch)
        # The wrapper owns the losses (the wrapped head keeps mmseg's default
        # loss_decode, which is never called).
        if isinstance(loss_decode, dict):
            self.loss_decode = MODELS.build(loss_decode)
        elif isinstance(loss_decode, (list, tuple)):
            self.loss_decode = nn.ModuleList(MODELS.build(c) for c in loss_decode)
        else:
            raise LaUConfigError(f'LaUHead: loss_decode must be a dict or a list of '
                                 f'dicts, got {type(loss_decode).__name__}')

    @staticmethod
    def _build_head(head: Any, head_kwargs: dict) -> BaseDecodeHead:
        if head is None:
            raise LaUConfigError("LaUHead needs head=<decode head type>, e.g. "
                                 "dict(type='LaUHead', head='EncHead', ...)")
        if isinstance(head, dict):
            if 'loss_decode' in head:
                raise LaUConfigError(
                    'LaUHead: put loss_decode next to head=..., not inside it: the '
                    'losses are computed by LaUHead at the LaU resolution')
            cfg = {**head, **head_kwargs}
        else:
            cfg = dict(type=head, **head_kwargs)
        head_type = cfg.get('type')
        head_cls = MODELS.get(head_type) if isinstance(head_type, str) else head_type
        if head_cls is None:
            raise LaUConfigError(f"LaUHead: unknown head type '{head_type}' in mmseg's "
                                 'MODELS registry')
        if not (isinstance(head_cls, type) and issubclass(head_cls, BaseDecodeHead)):
            raise LaUConfigError(
                f'LaUHead: head must be an mmseg decode head (a BaseDecodeHead '
                f'subclass), got {head_type!r}')
        cfg['type'] = head_cls
        return MODELS.build(cfg)

    def _build_offset_branch(self, cfg: Optional[dict]) -> nn.Module:
        cfg = {**dict(type='LaUOffsetBranch', mid_channels=128), **(cfg or {})}
        for key, value in (('in_channels', self.head.channels),
                           ('scale_factor', self.lau_factor), ('groups', self.lau_groups)):
            if key in cfg and cfg[key] != value:
                what = ('the channels of the feature that feeds the classifier'
                        if key == 'in_channels' else f'lau_{key.split("_")[0]}')
                raise LaUConfigError(
                    f'LaUHead: lau_offset_branch.{key}={cfg[key]!r} does not match the '
                    f'head ({key} must be {value}: {what}); leave it out and it is '
                    'filled in')
            cfg[key] = value
        branch = MODELS.build(cfg)
        # Dry run: the branch must give (N, 2G, k*h, k*w).
        k, g, c = self.lau_factor, self.lau_groups, self.head.channels
        probe = next(branch.parameters(), None)
        kw = {} if probe is None else dict(dtype=probe.dtype, device=probe.device)
        was_training = branch.training
        branch.eval()
        try:
            with torch.no_grad():
                out = branch(torch.zeros(1, c, 3, 2, **kw))
        except Exception as exc:  # noqa: BLE001  (reported as a config error)
            raise LaUConfigError(
                f'LaUHead: the offset branch fails on a feature with {c} channels (the '
                f'input of conv_seg): {exc}') from exc
        finally:
            branch.train(was_training)
        if tuple(out.shape) != (1, 2 * g, 3 * k, 2 * k):
            raise LaUConfigError(
                f'LaUHead: the offset branch must output (N, 2G, k*h, k*w) = '
                f'{(1, 2 * g, 3 * k, 2 * k)} for a (1, {c}, 3, 2) feature with '
                f'lau_factor={k}, lau_groups={g}; it gives {tuple(out.shape)}')
        return branch

    # -- what the segmentor reads from its decode head -----------------------------
    @property
    def align_corners(self) -> bool:
        return self.head.align_corners

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def out_channels(self) -> int:
        return self.head.out_channels

    @property
    def ignore_index(self) -> int:
        return self.head.ignore_index

    @property
    def threshold(self):
        return self.head.threshold

    def init_weights(self) -> None:
        super().init_weights()  # also the offset branch's own (authors') init

    # -- forward -------------------------------------------------------------------
    def lau_forward(self, inputs: Sequence[Tensor]
                    ) -> Tuple[Tensor, LaUContext, Tuple[Tensor, ...]]:
        """(LaU logits (N, K, k*h, k*w), context, the head's extra outputs)."""
        feat, logits, extra = self._split(self.head, inputs)
        if feat.shape[-2:] != logits.shape[-2:]:
            raise RuntimeError(
                f'LaUHead: the classifier input {tuple(feat.shape)} and the logits '
                f'{tuple(logits.shape)} differ in size; this head does not fit LaU')
        offsets = self.offset_branch(feat).to(logits.dtype)
        h, w = logits.shape[-2:]
        base_y, base_x = base_offsets(h, w, self.lau_factor, self.lau_base_coords,
                                      self.align_corners, logits.device, logits.dtype)
        ctx = LaUContext(logits, offsets, base_y, base_x, self.lau_factor,
                         self.lau_groups)
        up = location_aware_upsample(logits, ctx.full_offsets(), self.lau_factor)
        return up, ctx, extra

    def forward(self, inputs: Sequence[Tensor]):
        """LaU logits (plus the head's extra outputs, e.g. EncHead's SE logits)."""
        up, _, extra = self.lau_forward(inputs)
        return (up, *extra) if extra else up

    # -- training ------------------------------------------------------------------
    def loss(self, inputs: Sequence[Tensor], batch_data_samples, train_cfg
             ) -> Dict[str, Tensor]:
        up, ctx, extra = self.lau_forward(inputs)
        return self.loss_by_feat(up, ctx, batch_data_samples, extra)

    def loss_by_feat(self, seg_logits: Tensor, ctx: LaUContext, batch_data_samples,
                     extra: Tuple[Tensor, ...] = ()) -> Dict[str, Tensor]:
        """Every ``loss_decode`` at the LaU output resolution (label nearest-resized,
        as ``customize.py:L101``), plus EncHead's SE loss on the full label."""
        full_label = torch.stack([s.gt_sem_seg.data for s in batch_data_samples])
        seg_label = F.interpolate(full_label.float(), size=seg_logits.shape[-2:],
                                  mode='nearest').long()
        seg_weight = self.head.sampler.sample(seg_logits, seg_label) \
            if self.head.sampler is not None else None
        seg_label = seg_label.squeeze(1)
        losses = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) \
            else [self.loss_decode]
        out: Dict[str, Tensor] = {}
        for loss_decode in losses:
            kwargs = dict(weight=seg_weight, ignore_index=self.ignore_index)
            if getattr(loss_decode, 'needs_lau_context', False):
                kwargs['lau_ctx'] = ctx
            value = loss_decode(seg_logits, seg_label, **kwargs)
            name = loss_decode.loss_name
            out[name] = out[name] + value if name in out else value
        out['acc_seg'] = accuracy(seg_logits, seg_label, ignore_index=self.ignore_index)
        if extra:
            out.update(self._extra_losses(extra, full_label))
        return out

    def _extra_losses(self, extra: Tuple[Tensor, ...], full_label: Tensor
                      ) -> Dict[str, Tensor]:
        if isinstance(self.head, EncHead) and len(extra) == 1:
            # EncHead's SE loss exactly as EncHead.loss_by_feat computes it (its
            # target helper is EncHead's own static method; private, no public twin).
            present = self.head._convert_to_onehot_labels(full_label, self.num_classes)
            return dict(loss_se=self.head.loss_se_decode(extra[0], present))
        raise RuntimeError(
            f'LaUHead: {type(self.head).__name__} returns {len(extra) + 1} outputs; LaU '
            'supports heads returning logits (and EncHead with its SE output)')

    # -- prediction ----------------------------------------------------------------
    def predict(self, inputs: Sequence[Tensor], batch_img_metas: List[dict],
                test_cfg) -> Tensor:
        """LaU output, then the head's usual bilinear resize to the input size."""
        up, _, _ = self.lau_forward(inputs)
        return self.head.predict_by_feat(up, batch_img_metas)

    def predict_offsets(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor, LaUContext]:
        """(LaU logits, plain-upsampled logits, context): for visualisation."""
        up, ctx, _ = self.lau_forward(inputs)
        return up, ctx.plain_upsample(), ctx
