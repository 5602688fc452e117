"""ONNX translations of the LaU operator (``mmext::lau_forward``): standard ops only.

Both of torch's exporters are covered:

* the default (dynamo) exporter, ``torch.onnx.export(..., dynamo=True)``: pass
  ``custom_translation_table=lau_translation_table(opset)``; the entry is an
  onnxscript function traced into the graph;
* the TorchScript exporter, ``torch.onnx.export(..., dynamo=False)``: call
  :func:`register_torchscript_symbolic` once (``torch.onnx.register_custom_op_symbolic``).

``tools/deployment/export_onnx.py`` (:func:`mmext.deploy.export_onnx`) does either by
itself.

The graph (opset >= 16, all in the default ONNX domain) maps the operator onto
``GridSample`` exactly::

    y  = Clip(i / k_h + dy, 0, h - 1)        x  = Clip(j / k_w + dx, 0, w - 1)
    gy = 2 * y / max(h - 1, 1) - 1            gx = 2 * x / max(w - 1, 1) - 1
    GridSample(x grouped as (N*G, C/G, h, w), grid (N*G, H, W, [gx, gy]),
               mode=bilinear, align_corners=1, padding_mode=border)

With ``align_corners=1`` ONNX maps the normalised coordinate back to
``(g + 1) / 2 * (size - 1)``, i.e. to ``y`` itself: the base coordinate ``i / k`` and
the clamp rule (border replicate) of the kernels are kept, none of
``F.interpolate``'s conventions is introduced. A map of height (width) 1 has ``y = 0``
after the clamp, hence ``gy = -1``, which maps to row 0. ``border`` padding only
guards the last ulp of the round trip. NaN offsets: the graph reproduces the
kernels' rule (NaN output for every channel of the group at that pixel); the
sampling coordinate of such a pixel is replaced by 0 first, so onnxruntime never
samples at NaN. Gradients are not exported (inference graphs only).

Shapes: ``x`` (N, C, h, w), ``offsets`` (N, 2G, k_h*h, k_w*w) -> (N, C, k_h*h, k_w*w);
N, h, w may be dynamic (read with ``Shape``), C and G are read from the shapes too.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import torch

#: GridSample (and its ``align_corners`` / ``border`` semantics) needs opset 16.
MIN_OPSET = 16


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ValueError(
            f"the LaU operator exports to ONNX GridSample, which needs opset >= {MIN_OPSET}; "
            f"got opset {opset} (export with opset_version={MIN_OPSET} or newer)")


def _grid_sample_mode(opset: int) -> str:
    """GridSample's bilinear mode is named 'bilinear' up to opset 19, 'linear' from 20."""
    return "linear" if opset >= 20 else "bilinear"


def lau_graph(op: Any, x: Any, offsets: Any, k_h: int, k_w: int, mode: str) -> Any:
    """Build the LaU graph of the module docstring with ONNX ops from ``op``.

    ``op`` is onnxscript's opset module (dynamo exporter) or :class:`_TorchScriptOps`
    (TorchScript exporter): ``op.Name(*inputs, **attributes)`` adds one node of the
    default ONNX domain; constants come from ``op.Constant(value_int=...)``,
    ``value_ints`` or ``value_float``.

    Args:
        x: (N, C, h, w) values. offsets: (N, 2G, k_h*h, k_w*w) values.
        k_h, k_w: the integer upsampling factors.
        mode: GridSample's name of bilinear interpolation for the target opset.

    Returns:
        The (N, C, k_h*h, k_w*w) output value.
    """
    def ints(*values: int) -> Any:
        return op.Constant(value_ints=list(values))

    def scalar(value: float) -> Any:  # a 0-d constant of x's dtype
        return op.CastLike(op.Constant(value_float=float(value)), x)

    def dim(value: Any, axis: int) -> Any:  # dimension `axis` as a 1-element int64
        return op.Shape(value, start=axis, end=axis + 1)

    # (N, 2G, H, W) -> (N*G, 2, H, W)
    # Reshape targets spell out every known dimension (read with Shape) and use one
    # -1, never Reshape's 0 ("copy the input dimension"): torch's TorchScript-export
    # shape inference crashed the process (SIGFPE, 1 run in 4) on (-1, 2, 0, 0).
    off = op.Reshape(offsets, op.Concat(ints(-1, 2), op.Shape(offsets, start=2), axis=0))
    dy = op.Gather(off, op.Constant(value_int=0), axis=1)
    dx = op.Gather(off, op.Constant(value_int=1), axis=1)

    def base(size_axis: int, k: int) -> Any:  # (size,) coordinates i / k, as the kernels
        size = op.Squeeze(dim(offsets, size_axis), ints(0))
        index = op.Range(op.Constant(value_int=0), size, op.Constant(value_int=1))
        return op.Div(op.CastLike(index, x), scalar(k))

    ys = op.Add(op.Unsqueeze(base(2, k_h), ints(1)), dy)  # (H, 1) + (N*G, H, W)
    xs = op.Add(base(3, k_w), dx)  # (W,) + (N*G, H, W)
    # NaN offsets: NaN output (below); sample at 0 meanwhile (never at NaN).
    nan = op.Or(op.IsNaN(ys), op.IsNaN(xs))
    zero, one, two = scalar(0.0), scalar(1.0), scalar(2.0)
    ys = op.Where(nan, zero, ys)
    xs = op.Where(nan, zero, xs)

    def normalised(p: Any, axis: int) -> Any:  # clamp to [0, size-1], then to [-1, 1]
        last = op.Sub(op.CastLike(op.Squeeze(dim(x, axis), ints(0)), x), one)
        p = op.Min(op.Max(p, zero), last)
        return op.Sub(op.Div(op.Mul(p, two), op.Max(last, one)), one)

    gy, gx = normalised(ys, 2), normalised(xs, 3)
    grid = op.Concat(op.Unsqueeze(gx, ints(3)), op.Unsqueeze(gy, ints(3)), axis=3)
    grouped = op.Reshape(x, op.Concat(dim(off, 0), ints(-1), op.Shape(x, start=2), axis=0))  # (N*G, C/G, h, w)
    out = op.GridSample(grouped, grid, align_corners=1, mode=mode, padding_mode="border")
    out = op.Where(op.Unsqueeze(nan, ints(1)), scalar(float("nan")), out)
    return op.Reshape(out, op.Concat(dim(x, 0), ints(-1), op.Shape(out, start=2), axis=0))  # (N, C, H, W)


def lau_onnxscript_function(opset: int = 18) -> Callable[..., Any]:
    """The onnxscript translation of ``mmext::lau_forward`` for the dynamo exporter.

    Args:
        opset: the ONNX opset of the exported model (``opset_version`` of
            ``torch.onnx.export``); it decides GridSample's mode name.

    Returns:
        ``f(x, offsets, k_h: int, k_w: int)``, traced into the graph by the exporter.
    """
    _check_opset(opset)
    from onnxscript import opset18 as op  # the op set of torch's own translations

    mode = _grid_sample_mode(opset)

    def lau_forward(x, offsets, k_h: int, k_w: int):
        return lau_graph(op, x, offsets, int(k_h), int(k_w), mode)

    return lau_forward


def lau_translation_table(opset: int = 18) -> Dict[Any, Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``::

        torch.onnx.export(model, (inputs,), 'model.onnx', dynamo=True, opset_version=18,
                          custom_translation_table=lau_translation_table(18))

    Loads the compiled extension (the op must exist to be named here).
    """
    _require_op()
    return {torch.ops.mmext.lau_forward.default: lau_onnxscript_function(opset)}


def _require_op() -> None:
    from ._extension import extension_state, load_extension

    if not load_extension():
        raise RuntimeError(
            "the LaU extension (torch.ops.mmext.lau_forward) is not loaded: "
            f"{extension_state().error}; models then run the pure-PyTorch reference, "
            "which exports without a translation (as gathers)")


class _TorchScriptOps:
    """``op.Name(*inputs, **attributes)`` on a TorchScript ``GraphContext``.

    Attribute kinds follow the value: int / list of ints -> ``_i``, float -> ``_f``,
    str -> ``_s``; ``Constant``'s ``value_int(s)`` / ``value_float`` become tensors.
    """

    def __init__(self, g: Any) -> None:
        self._g = g

    def Constant(self, value_int: Any = None, value_ints: Any = None,  # noqa: N802
                 value_float: Any = None) -> Any:
        if value_ints is not None:
            value = torch.tensor(list(value_ints), dtype=torch.int64)
        elif value_int is not None:
            value = torch.tensor(int(value_int), dtype=torch.int64)
        else:
            value = torch.tensor(float(value_float), dtype=torch.float32)
        return self._g.op("Constant", value_t=value)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def node(*inputs: Any, **attributes: Any) -> Any:
            kwargs = {}
            for key, value in attributes.items():
                if isinstance(value, str):
                    kwargs[f"{key}_s"] = value
                elif isinstance(value, float):
                    kwargs[f"{key}_f"] = value
                else:
                    kwargs[f"{key}_i"] = value
            return self._g.op(name, *inputs, **kwargs)

        return node


#: The opsets the TorchScript exporter can target (it stops at 20).
TORCHSCRIPT_OPSETS = range(MIN_OPSET, 21)


def register_torchscript_symbolic() -> None:
    """Register the LaU translation for ``torch.onnx.export(..., dynamo=False)``.

    ``torch.onnx.register_custom_op_symbolic('mmext::lau_forward', ...)`` for every
    opset in :data:`TORCHSCRIPT_OPSETS` (idempotent). Exporting with an opset below
    16 fails in the symbolic with a message naming the minimum.
    """
    _require_op()
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx.symbolic_helper import parse_args

    def make(opset: int) -> Callable[..., Any]:
        @parse_args("v", "v", "i", "i")
        def symbolic(g: Any, x: Any, offsets: Any, k_h: int, k_w: int) -> Any:
            out = lau_graph(_TorchScriptOps(g), x, offsets, k_h, k_w, _grid_sample_mode(opset))
            # TorchScript's shape inference cannot follow the Reshape chain (it guesses
            # a wrong rank): state the output type, (N, C, k_h*h, k_w*w), as far as known.
            sizes = x.type().varyingSizes()
            if sizes is not None and len(sizes) == 4:
                n, c, h, w = sizes
                out.setType(x.type().with_sizes([
                    n, c, None if h is None else k_h * h, None if w is None else k_w * w]))
            return out

        return symbolic

    for opset in TORCHSCRIPT_OPSETS:
        register_custom_op_symbolic("mmext::lau_forward", make(opset), opset)
    for opset in range(7, MIN_OPSET):
        register_custom_op_symbolic("mmext::lau_forward", _too_old, opset)


def _too_old(g: Any, *args: Any) -> Any:
    _check_opset(g.opset)
