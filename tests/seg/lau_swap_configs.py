"""Test helper: mmseg's shipped configs with their last decode head wrapped in LaUHead
and the backbone (and neck) replaced by a tiny stand-in.

The stand-in (:class:`TinyStandIn`) outputs, for every level a head reads, a feature
map with the channels that head's config expects (``in_channels`` / ``in_index``) at
a stride measured from the config's backbone (ResNet: from its ``strides``; ViTs:
the patch size for every level; otherwise 4, 8, 16, 32). The neck is dropped: the
heads' ``in_channels`` already name what the neck would output. DDRNet and PIDNet
backbones return a tuple in training and one map in eval; the stand-in does the same.
Every head's widths (``*channels`` and ``embed_dims`` keys of 64 or more) are divided
by 4, in the decode and auxiliary heads alike, so that a case builds and steps in
about a second on 2 CPU cores; the head classes and their structure are unchanged.
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import mmseg
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

CONFIG_ROOT = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
VIT_BACKBONES = ('VisionTransformer', 'MAE', 'BEiT')
# Backbones whose output differs between training and eval (the heads handle both):
# training levels (as fractions of the head's in_channels) and the eval level.
TRAIN_EVAL_BACKBONES = {
    'DDRNet': ((0.5, 1.0), 1),         # (c3 feature, c5 feature) / c5
    'PIDNet': ((0.5, 1.0, 0.5), 1),    # (P, I, D) / I
}


@MODELS.register_module(force=True)
class TinyStandIn(BaseModule):
    """Image (N, 3, H, W) -> per level (N, channels[i], H/strides[i], W/strides[i]):
    average pooling by the stride, then a 1x1 conv.

    ``cls_token``: each level as ``[map, (N, C) token]`` (ViT ``output_cls_token``,
    read by DPTHead). ``train_levels`` / ``eval_level``: in training a tuple of those
    levels, in eval the one map (DDRNet, PIDNet).
    """

    def __init__(self, channels: Sequence[int], strides: Sequence[int],
                 cls_token: bool = False, train_levels: Optional[Sequence[int]] = None,
                 eval_level: Optional[int] = None, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.strides = list(strides)
        self.convs = nn.ModuleList(nn.Conv2d(3, c, 1) for c in channels)
        self.cls_token = cls_token
        self.train_levels = train_levels
        self.eval_level = eval_level

    def forward(self, x: torch.Tensor) -> Any:
        outs: List[Any] = [conv(F.avg_pool2d(x, s) if s > 1 else x)
                           for conv, s in zip(self.convs, self.strides)]
        if self.cls_token:
            outs = [[o, o.mean((2, 3))] for o in outs]
        if self.train_levels is not None:
            if self.training:
                return tuple(outs[i] for i in self.train_levels)
            return outs[self.eval_level]
        return tuple(outs)


def _as_list(v: Any) -> List[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _no_sync_bn(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {k: _no_sync_bn(v) for k, v in obj.items()}
        if out.get('type') == 'SyncBN':
            out['type'] = 'BN'
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_no_sync_bn(v) for v in obj)
    return obj


def _shrink(head: dict, factor: int = 4) -> dict:
    """The head config with its widths >= 64 divided by ``factor``."""
    def narrow(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, list, tuple)):
            return v
        if isinstance(v, int):
            return v // factor if v >= 64 else v
        return type(v)(narrow(x) for x in v)

    return {k: narrow(v) if (k.endswith('channels') or k == 'embed_dims') else v
            for k, v in head.items()}


def _strides(backbone: dict, n: int) -> List[int]:
    kind = backbone.get('type', '')
    if kind in VIT_BACKBONES:
        return [backbone.get('patch_size', 16)] * n
    if kind.startswith('ResNe') and 'strides' in backbone:
        out, s = [], 4
        for i in range(n):
            s *= backbone['strides'][i] if i < len(backbone['strides']) else 2
            out.append(s)
        return out
    return [4 * 2 ** i for i in range(n)]


def _stand_in(model: dict, heads: List[dict]) -> dict:
    """The TinyStandIn config giving every head the levels it reads."""
    backbone = model['backbone']
    kind = backbone.get('type', '')
    if kind in TRAIN_EVAL_BACKBONES:
        fractions, eval_level = TRAIN_EVAL_BACKBONES[kind]
        c = heads[-1]['in_channels']
        levels = len(fractions)
        return dict(type='TinyStandIn', channels=[int(c * f) for f in fractions],
                    strides=[8] * levels, train_levels=list(range(levels)),
                    eval_level=eval_level)
    wants = []  # (index, channels)
    for head in heads:
        if 'c1_in_channels' in head:  # DeepLabV3+: its decoder reads inputs[0] itself
            wants.append((0, head['c1_in_channels']))
        idx = _as_list(head.get('in_index', -1))
        chans = _as_list(head['in_channels'])
        if len(chans) == 1 and len(idx) > 1:
            chans = chans * len(idx)
        wants += list(zip(idx, chans))
    n = max([i + 1 for i, _ in wants if i >= 0] + [-i for i, _ in wants if i < 0])
    channels: Dict[int, int] = {}
    for i, c in wants:
        i %= n
        if channels.setdefault(i, c) != c:
            raise AssertionError(f'level {i}: heads want {channels[i]} and {c} channels')
    # LR-ASPP's image pool is a fixed 49-pixel AvgPool2d: its maps must be >= 49 px.
    strides = [1] * n if heads[-1]['type'] == 'LRASPPHead' else _strides(backbone, n)
    return dict(type='TinyStandIn', channels=[channels.get(i, 8) for i in range(n)],
                strides=strides,
                cls_token=bool(backbone.get('output_cls_token', False)))


def load_config(rel: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_ROOT, rel))


def lau_wrapped_head(head: dict, lau_factor: int = 4) -> dict:
    """``head`` (a decode head config) in LaUHead: the head's keys unchanged, its
    ``loss_decode`` kept as the head's own (``lau_head_loss_decode``), the LaU
    offset-guided loss on the logits, a zero-init offset branch and the
    'interpolate' grid (zero offsets = bilinear upsampling)."""
    head = dict(head)
    head_type = head.pop('type')
    own_loss = head.pop('loss_decode', None)
    wrapped = dict(type='LaUHead', head=head_type, lau_factor=lau_factor,
                   lau_base_coords='interpolate',
                   lau_offset_branch=dict(init='zeros', mid_channels=16),
                   loss_decode=dict(type='LaUOffsetGuidedLoss'), **head)
    if own_loss is not None:
        wrapped['lau_head_loss_decode'] = own_loss
    return wrapped


def last_decode_head(rel: str) -> dict:
    """The config's last decode head, as written (no stand-in)."""
    heads = load_config(rel).to_dict()['model']['decode_head']
    return heads[-1] if isinstance(heads, list) else heads


def lau_swapped_model(rel: str, stage: int = -1, lau_factor: int = 4) -> ConfigDict:
    """The model config of ``rel`` with decode head ``stage`` (default the last) in
    LaUHead (:func:`lau_wrapped_head`), auxiliary heads untouched; tiny stand-in
    backbone, no neck, widths / 4, BN instead of SyncBN, whole-image test."""
    model = _no_sync_bn(load_config(rel).to_dict()['model'])
    heads = model['decode_head']
    heads = [_shrink(h) for h in (heads if isinstance(heads, list) else [heads])]
    aux = model.get('auxiliary_head') or []
    aux = [_shrink(h) for h in (aux if isinstance(aux, list) else [aux])]
    if aux:
        model['auxiliary_head'] = aux if isinstance(model['auxiliary_head'], list) \
            else aux[0]
    model['backbone'] = _stand_in(model, heads + aux)
    model.pop('neck', None)
    model.pop('pretrained', None)
    model['test_cfg'] = dict(mode='whole')
    heads[stage] = lau_wrapped_head(heads[stage], lau_factor)
    model['decode_head'] = heads if isinstance(model['decode_head'], list) else heads[0]
    return ConfigDict(model)  # mmseg reads test_cfg.mode as an attribute
