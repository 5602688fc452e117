"""LaU on top of any mmseg decode head, by config: the wrapper head ``LaUHead``.

``LaUHead`` owns three parts, by ordinary composition:

* ``head``: the decode head it wraps (an mmseg ``BaseDecodeHead`` that classifies
  with ``conv_seg``), built from the same config keys as before (``head`` names its
  type);
* ``offset_branch``: the offset predictor (:class:`~mmext.seg.LaUOffsetBranch`), fed
  by the feature that feeds the head's classifier;
* the upsampling: :func:`mmext.ops.location_aware_upsample` of the head's
  low-resolution logits.

Config (a LaU config differs from its bilinear baseline in these lines only)::

    decode_head=dict(type='LaUHead', head='EncHead',      # was type='EncHead'
                     lau_factor=4,
                     ... every other key of the EncHead config unchanged ...,
                     loss_decode=dict(_delete_=True, type='LaUOffsetGuidedLoss'))

No per-head code: ``LaUHead`` runs the head's own ``forward`` and reads the
classifier's input and output with forward hooks on ``head.conv_seg`` (and
``head.dropout``, to take the feature before dropout, as the authors' offset input):
:func:`mmext.seg.classifier_input.capture_classifier`. The head output that *is*
``conv_seg``'s output (tensor identity) is the logits LaU upsamples; the head's other
outputs (EncHead's SE logits, DAHead's PAM / CAM logits, DDRNet's spatial logits,
PIDNet's P and D logits) are returned and trained as the head itself does.

Which heads (docs/lau_seg.md, "Which decode heads"): every head whose prediction is
``conv_seg``'s output, including the last stage of a cascade (OCRNet's OCRHead: its
``prev_output`` is passed through). Refused at build, with the reason: query / mask
heads (MaskFormer, Mask2Former, K-Net, SAN, Segmenter's mask transformer),
PointRend's PointHead, VPD's depth head, any head without a ``Conv2d``
``conv_seg``, and a LaUHead at a non-final stage of a ``CascadeEncoderDecoder``. A
head whose returned logits are not ``conv_seg``'s output fails at its first forward
with a :class:`LaUConfigError`.

Training: every ``loss_decode`` of the wrapper is computed at the LaU output
resolution against the label nearest-resized to it (as the official code does);
location-aware losses also get a :class:`LaUContext` (``lau_ctx`` keyword). The
head's extra outputs get the head's own ``loss_by_feat`` terms (bilinear, at the
label resolution, with the head's ``loss_decode``: ``lau_head_loss_decode``).
Prediction: LaU output, then the head's ``predict_by_feat`` (bilinear resize to the
input size).

Base coordinates: output pixel i samples row ``i / k + dy`` (the paper's grid and the
operator's convention; ``lau_base_coords='paper'``, default). ``'interpolate'`` (an
option of ours) adds a fixed base offset so that zero learned offsets reproduce
``F.interpolate(bilinear, align_corners=head.align_corners)``.
"""
import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.segmentors import CascadeEncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor, nn

from mmext.ops import location_aware_upsample

from .classifier_input import ClassifierCall, capture_classifier, find_logits
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


# -- which heads ---------------------------------------------------------------------
#: Head classes (mmseg registry names) refused at build, with the reason. Checked with
#: issubclass, so their subclasses are refused too. Names absent from the installed
#: mmseg are skipped.
REFUSED_HEADS: Dict[str, str] = {
    'MaskFormerHead': 'query-based mask classification (per-query masks and class '
                      'scores), no per-pixel conv_seg logit map to upsample',
    'Mask2FormerHead': 'query-based mask classification (per-query masks and class '
                       'scores), no per-pixel conv_seg logit map to upsample',
    'IterativeDecodeHead': 'K-Net is query-based (kernels updated iteratively, masks '
                           '= kernels x features), no conv_seg logit map to upsample',
    'SideAdapterCLIPHead': 'SAN is query-based (mask proposals x CLIP class scores), no '
                           'conv_seg logit map to upsample',
    'SegmenterMaskTransformerHead': "Segmenter's class masks are dot products of patch "
                                    'and class embeddings; conv_seg is never called',
    'PointHead': "PointRend's PointHead classifies sampled points (a Conv1d) and "
                 'upsamples by its own subdivision inference, not a dense logit map; '
                 'its FPNHead stage is a non-final cascade stage',
    'VPDDepthHead': 'depth regression (a sigmoid depth map), no class logits',
}


def _refusal(head_cls: type) -> Optional[str]:
    for name, reason in REFUSED_HEADS.items():
        cls = MODELS.get(name)
        if isinstance(cls, type) and issubclass(head_cls, cls):
            return f'LaUHead: {head_cls.__name__} is not supported: {reason}'
    return None


def _cascade_position() -> Optional[Tuple[int, int]]:
    """(index, num_stages) of the decode head being built, if mmseg's
    ``CascadeEncoderDecoder._init_decode_head`` is building it, else None.

    Why a frame look-up: mmseg builds a cascade's heads in that method with
    ``MODELS.build(decode_head[i])`` and passes a head nothing about its position, and
    the segmentor runs no code of ours before the first forward. Refusing a
    non-final LaUHead at model build (not at the first iteration, after the data has
    loaded) needs the position, and the segmentor under construction is the one
    place that has it: its public ``num_stages`` and ``decode_head`` (the
    ``ModuleList`` filled so far, so ``len`` is this head's index). The method is
    found by its code object, not by name; a segmentor that overrides
    ``_init_decode_head`` is not recognised (then no check is made).
    """
    code = CascadeEncoderDecoder._init_decode_head.__code__
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code is code:
                segmentor = frame.f_locals.get('self')
                built = getattr(segmentor, 'decode_head', None)
                stages = getattr(segmentor, 'num_stages', None)
                if isinstance(built, nn.ModuleList) and isinstance(stages, int):
                    return len(built), stages
                return None
            frame = frame.f_back
        return None
    finally:
        del frame  # no reference cycle through the frames


# -- the classifier's input ----------------------------------------------------------
HeadSplit = Tuple[Tensor, Tensor, Tuple[Any, ...]]  # (feature, logits, extra outputs)


@dataclass(frozen=True)
class _HeadRun:
    """One run of the wrapped head's ``forward``.

    ``outputs``: what the head returned, as a tuple (one element for a tensor);
    ``index``: the position of the logits (``conv_seg``'s output) in it; ``call``:
    the classifier's (pre-dropout) input and output; ``container``: the head's
    return type (``None`` for a bare tensor, else ``tuple`` / ``list``).
    """
    outputs: Tuple[Any, ...]
    index: int
    call: ClassifierCall
    container: Optional[type]

    @property
    def extra(self) -> Tuple[Any, ...]:
        return self.outputs[:self.index] + self.outputs[self.index + 1:]

    def replaced(self, logits: Tensor) -> Any:
        """The head's output with its logits replaced by ``logits``."""
        if self.container is None:
            return logits
        outs = list(self.outputs)
        outs[self.index] = logits
        return self.container(outs)


def _run_head(head: BaseDecodeHead, inputs: Any, prev_output: Optional[Tensor]
              ) -> _HeadRun:
    """Run ``head.forward`` (with ``prev_output`` for a cascade head) and find the
    logits it returns among its ``conv_seg`` calls."""
    args = (inputs, ) if prev_output is None else (inputs, prev_output)
    with capture_classifier(head) as calls:
        out = head.forward(*args)
    container = type(out) if isinstance(out, (tuple, list)) else None
    outputs = tuple(out) if container is not None else (out, )
    try:
        index, call = find_logits(outputs, calls)
    except LookupError as exc:
        found = exc.args[0]
        what = ('no output that is its conv_seg output: its logits are changed after '
                'the classifier (e.g. resized or summed), so there is no classifier '
                'feature / logit pair for LaU' if found == 0 else
                f'{found} outputs that are conv_seg outputs; LaU needs exactly one')
        raise LaUConfigError(
            f'LaUHead: {type(head).__name__}.forward returned {what} ({len(calls)} '
            f'conv_seg call(s), {len(outputs)} output(s))') from None
    if call.feature.shape[-2:] != call.logits.shape[-2:]:
        raise LaUConfigError(
            f'LaUHead: {type(head).__name__}: the classifier input '
            f'{tuple(call.feature.shape)} and its logits {tuple(call.logits.shape)} '
            'differ in size; the offset branch needs them aligned')
    return _HeadRun(outputs, index, call, container)


def split_head_forward(head: BaseDecodeHead, inputs: Any,
                       prev_output: Optional[Tensor] = None) -> HeadSplit:
    """(classifier input before dropout (N, C', h, w), logits (N, K, h, w), the
    head's other outputs), from one run of the head's own ``forward``."""
    run = _run_head(head, inputs, prev_output)
    return run.call.feature, run.call.logits, run.extra


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
            ``in_channels`` (``conv_seg``'s input channels), ``scale_factor`` and
            ``groups`` are filled in.
        lau_base_coords: 'paper' (default, i/k) or 'interpolate'.
        lau_head_loss_decode: the wrapped head's own ``loss_decode`` (default:
            mmseg's, one CrossEntropyLoss), used only by the head's ``loss_by_feat``
            for its extra outputs; heads whose ``loss_by_feat`` indexes a list
            (DDRHead: 2, PIDHead: 4) need their config's list here.
        loss_decode: the losses computed at the LaU resolution (a dict or list).
        **head_kwargs: the wrapped head's config.

    Shapes: ``forward(inputs[, prev_output])`` -> the head's output with its logits
    (N, K, h, w) replaced by the LaU logits (N, K, k*h, k*w): a tensor for most heads,
    a tuple for heads returning several outputs (EncHead with SE loss, DAHead, and
    DDRHead / PIDHead in training).
    """

    def __init__(self,
                 head: Any = None,
                 lau_factor: int = 4,
                 lau_groups: int = 1,
                 lau_offset_branch: Optional[dict] = None,
                 lau_base_coords: str = 'paper',
                 lau_head_loss_decode: Any = None,
                 loss_decode: Any = dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=1.0),
                 init_cfg: Optional[dict] = None,
                 **head_kwargs: Any) -> None:
        super().__init__(init_cfg)
        if lau_head_loss_decode is not None:
            head_kwargs['loss_decode'] = lau_head_loss_decode
        self.head = self._build_head(head, head_kwargs)
        self._check_cascade_stage()
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
        self.lau_factor = lau_factor
        self.lau_groups = lau_groups
        self.lau_base_coords = lau_base_coords
        self.offset_branch = self._build_offset_branch(lau_offset_branch)
        # The wrapper owns the losses of the logits (the wrapped head's loss_decode
        # only serves its extra outputs, through its own loss_by_feat).
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
                    'losses are computed by LaUHead at the LaU resolution (the head\'s '
                    'own losses for its extra outputs: lau_head_loss_decode=...)')
            cfg = {**head, **head_kwargs}
        else:
            cfg = dict(type=head, **head_kwargs)
        head_type = cfg.get('type')
        head_cls = MODELS.get(head_type) if isinstance(head_type, str) else head_type
        if head_cls is None:
            raise LaUConfigError(f"LaUHead: unknown head type '{head_type}' in mmseg's "
                                 'MODELS registry')
        refusal = _refusal(head_cls) if isinstance(head_cls, type) else None
        if refusal:
            raise LaUConfigError(refusal)
        if not (isinstance(head_cls, type) and issubclass(head_cls, BaseDecodeHead)):
            raise LaUConfigError(
                f'LaUHead: head must be an mmseg decode head (a BaseDecodeHead '
                f'subclass), got {head_type!r}')
        cfg['type'] = head_cls
        built = MODELS.build(cfg)
        if not isinstance(getattr(built, 'conv_seg', None), nn.Conv2d):
            raise LaUConfigError(
                f'LaUHead: {head_cls.__name__} is not supported: it has no Conv2d '
                'conv_seg, the classifier whose input and output LaU reads')
        return built

    def _check_cascade_stage(self) -> None:
        position = _cascade_position()
        if position is not None and position[0] < position[1] - 1:
            index, stages = position
            raise LaUConfigError(
                f'LaUHead: decode_head[{index}] of a {stages}-stage cascade is not '
                'supported: LaU goes on the last stage (its logits are the '
                "prediction); a non-final stage's output feeds the next stage as "
                'prev_output at its own resolution')

    @property
    def _classifier_channels(self) -> int:
        return self.head.conv_seg.in_channels

    def _build_offset_branch(self, cfg: Optional[dict]) -> nn.Module:
        c = self._classifier_channels
        cfg = {**dict(type='LaUOffsetBranch', mid_channels=128), **(cfg or {})}
        for key, value in (('in_channels', c), ('scale_factor', self.lau_factor),
                           ('groups', self.lau_groups)):
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
        k, g = self.lau_factor, self.lau_groups
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

    @property
    def is_cascade(self) -> bool:
        """The wrapped head takes the previous stage's output (OCRHead)."""
        return isinstance(self.head, BaseCascadeDecodeHead)

    def init_weights(self) -> None:
        super().init_weights()  # also the offset branch's own (authors') init

    def _split_args(self, args: Tuple[Any, ...], n: int, what: str
                    ) -> Tuple[Optional[Tensor], Tuple[Any, ...]]:
        """mmseg calls a cascade head with ``prev_output`` after ``inputs``:
        (prev_output or None, the remaining ``n`` arguments)."""
        expected = n + 1 if self.is_cascade else n
        if len(args) != expected:
            raise TypeError(f'LaUHead.{what}: {expected} arguments after inputs '
                            f'expected for {type(self.head).__name__}, got {len(args)}')
        return (args[0], args[1:]) if self.is_cascade else (None, args)

    # -- forward -------------------------------------------------------------------
    def _lau(self, inputs: Any, prev_output: Optional[Tensor]
             ) -> Tuple[Tensor, LaUContext, _HeadRun]:
        """(LaU logits (N, K, k*h, k*w), context, the head's run)."""
        if self.is_cascade and prev_output is None:
            raise TypeError(f'LaUHead: {type(self.head).__name__} is a cascade head: '
                            'forward(inputs, prev_output)')
        run = _run_head(self.head, inputs, prev_output)
        logits = run.call.logits
        offsets = self.offset_branch(run.call.feature).to(logits.dtype)
        h, w = logits.shape[-2:]
        base_y, base_x = base_offsets(h, w, self.lau_factor, self.lau_base_coords,
                                      self.align_corners, logits.device, logits.dtype)
        ctx = LaUContext(logits, offsets, base_y, base_x, self.lau_factor,
                         self.lau_groups)
        up = location_aware_upsample(logits, ctx.full_offsets(), self.lau_factor)
        return up, ctx, run

    def lau_forward(self, inputs: Any, prev_output: Optional[Tensor] = None
                    ) -> Tuple[Tensor, LaUContext, Tuple[Any, ...]]:
        """(LaU logits (N, K, k*h, k*w), context, the head's other outputs)."""
        up, ctx, run = self._lau(inputs, prev_output)
        return up, ctx, run.extra

    def forward(self, inputs: Any, prev_output: Optional[Tensor] = None) -> Any:
        """The head's output with its logits replaced by the LaU logits."""
        up, _, run = self._lau(inputs, prev_output)
        return run.replaced(up)

    # -- training ------------------------------------------------------------------
    def loss(self, inputs: Any, *args: Any) -> Dict[str, Tensor]:
        """``loss(inputs, batch_data_samples, train_cfg)``; for a cascade head
        ``loss(inputs, prev_output, batch_data_samples, train_cfg)`` (mmseg's)."""
        prev_output, (batch_data_samples, _) = self._split_args(args, 2, 'loss')
        up, ctx, run = self._lau(inputs, prev_output)
        losses = self.extra_losses(run, batch_data_samples)
        for name, value in self.loss_by_feat(up, ctx, batch_data_samples).items():
            losses[name] = losses[name] + value if name in losses else value
        return losses

    def loss_by_feat(self, seg_logits: Tensor, ctx: LaUContext, batch_data_samples
                     ) -> Dict[str, Tensor]:
        """Every ``loss_decode`` at the LaU output resolution (label nearest-resized,
        as ``customize.py:L101``) and ``acc_seg``."""
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
        return out

    def extra_losses(self, run: _HeadRun, batch_data_samples) -> Dict[str, Tensor]:
        """The losses of the head's extra outputs, as the head computes them.

        The head's own ``loss_by_feat`` on its own output with the logits detached:
        the terms that still have a gradient are those of the extra outputs
        (EncHead's ``loss_se``, DAHead's ``pam.*`` / ``cam.*``, DDRHead's
        ``loss_spatial``, PIDHead's ``loss_sem_p`` / ``loss_bd``); the terms of the
        logits (replaced by the LaU losses) and all metrics are dropped. So the extra
        outputs keep their bilinear, label-resolution supervision, unchanged. Under
        ``torch.no_grad`` nothing has a gradient and this is empty.
        """
        if run.container is None:
            return {}
        try:
            head_losses = self.head.loss_by_feat(run.replaced(run.call.logits.detach()),
                                                 batch_data_samples)
        except TypeError as exc:
            if isinstance(self.head.loss_decode, nn.ModuleList):
                raise
            # DDRHead / PIDHead index loss_decode[i]: mmseg's default is one module.
            raise LaUConfigError(
                f"LaUHead: {type(self.head).__name__}'s own loss_by_feat (for its extra "
                f'outputs) fails with its loss_decode ({exc}); give it the loss list of '
                "its config: lau_head_loss_decode=[...]") from exc
        return {name: value for name, value in head_losses.items()
                if isinstance(value, Tensor) and value.requires_grad}

    # -- prediction ----------------------------------------------------------------
    def predict(self, inputs: Any, *args: Any) -> Tensor:
        """``predict(inputs, batch_img_metas, test_cfg)`` (cascade head:
        ``predict(inputs, prev_output, batch_img_metas, test_cfg)``): the LaU output,
        then the head's usual bilinear resize to the input size."""
        prev_output, (batch_img_metas, _) = self._split_args(args, 2, 'predict')
        up, _, _ = self._lau(inputs, prev_output)
        return self.head.predict_by_feat(up, batch_img_metas)

    def predict_offsets(self, inputs: Any, prev_output: Optional[Tensor] = None
                        ) -> Tuple[Tensor, Tensor, LaUContext]:
        """(LaU logits, plain-upsampled logits, context): for visualisation."""
        up, ctx, _ = self.lau_forward(inputs, prev_output)
        return up, ctx.plain_upsample(), ctx
