"""The LaU op exports to standard ONNX (both torch exporters) and onnxruntime's output
equals the C++ kernel's: factors 2/4/8 and (4, 2), odd sizes, maps of height or width 1,
grouped offsets (G=1, 2, C), batches, offsets past the border and exactly on it, NaN."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from mmext.ops import location_aware_upsample
from mmext.ops.onnx import (MIN_OPSET, lau_onnxscript_function, lau_translation_table,
                            register_torchscript_symbolic)

ATOL = 2e-5


class LaU(nn.Module):
    def __init__(self, k) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return location_aware_upsample(x, offsets, self.k, backend="extension")


def _factors(k):
    return (k, k) if isinstance(k, int) else k


def _export(path, k, channels: int, groups: int, dynamo: bool, opset: int) -> str:
    """One export per (k, C, G) with dynamic N, h, w (the tests then run many shapes)."""
    k_h, k_w = _factors(k)
    x = torch.randn(2, channels, 3, 4)
    offsets = torch.randn(2, 2 * groups, 3 * k_h, 4 * k_w)
    if dynamo:
        from torch.export import Dim
        n, h, w = Dim("n", min=1, max=64), Dim("h", min=1, max=512), Dim("w", min=1, max=512)
        torch.onnx.export(
            LaU(k), (x, offsets), path, dynamo=True, opset_version=opset,
            input_names=["x", "offsets"],
            dynamic_shapes=({0: n, 2: h, 3: w}, {0: n, 2: k_h * h, 3: k_w * w}),
            custom_translation_table=lau_translation_table(opset))
    else:
        register_torchscript_symbolic()
        axes = {"x": {0: "n", 2: "h", 3: "w"}, "offsets": {0: "n", 2: "H", 3: "W"}}
        torch.onnx.export(LaU(k), (x, offsets), path, dynamo=False, opset_version=opset,
                          input_names=["x", "offsets"], dynamic_axes=axes)
    return path


def _domains(path: str) -> set:
    model = onnx.load(path)
    return {n.domain for n in model.graph.node} | {
        n.domain for f in model.functions for n in f.node}


def _offsets(n: int, groups: int, h: int, w: int, k, gen: torch.Generator) -> torch.Tensor:
    """Offsets whose coordinates land inside, past the border (far and near, +-inf
    excluded: huge values), and exactly on the border rows/columns and integers."""
    k_h, k_w = _factors(k)
    H, W = k_h * h, k_w * w
    off = torch.randn(n, 2 * groups, H, W, generator=gen) * max(h, w)
    off = off.view(n, groups, 2, H, W)
    base_y = torch.arange(H, dtype=torch.float32).view(H, 1) / k_h
    base_x = torch.arange(W, dtype=torch.float32).view(1, W) / k_w
    pick = torch.rand(n, groups, H, W, generator=gen)
    # exactly on the last row / first column (bounds are not clamped: kernel rule)
    off[:, :, 0] = torch.where(pick < 0.15, (h - 1) - base_y, off[:, :, 0])
    off[:, :, 1] = torch.where(pick < 0.15, -base_x.expand(H, W), off[:, :, 1])
    # far outside
    off[:, :, 0] = torch.where((pick > 0.85) & (pick < 0.9), torch.tensor(1e4), off[:, :, 0])
    off[:, :, 1] = torch.where(pick > 0.9, torch.tensor(-1e4), off[:, :, 1])
    # zero offsets (base grid, integer coordinates every k-th row/column)
    off[:, :, :, : H // 3] = torch.where(pick[:, :, None, : H // 3] < 0.5, 0.0,
                                         off[:, :, :, : H // 3])
    return off.view(n, 2 * groups, H, W)


def _run(path: str, x: torch.Tensor, offsets: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, (x.numpy(), offsets.numpy()))))[0]


CASES = [  # (k, C, G): factors 2, 4, 8 and (4, 2); G = 1, 2, C
    (2, 4, 1),
    (4, 4, 2),
    (8, 3, 3),
    ((4, 2), 6, 2),
]
SHAPES = [(1, 5, 7), (2, 1, 3), (3, 4, 1), (2, 2, 2)]  # (N, h, w): odd, h==1, w==1


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("k,channels,groups", CASES, ids=lambda v: str(v))
def test_onnxruntime_equals_cpp_kernel(tmp_path, lau_ext, dynamo, k, channels, groups):
    opset = 18 if dynamo else 17
    path = _export(str(tmp_path / "lau.onnx"), k, channels, groups, dynamo, opset)
    assert _domains(path) <= {"", "ai.onnx"}, "custom-domain op in the graph"
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert "GridSample" in ops
    gen = torch.Generator().manual_seed(0)
    k_h, k_w = _factors(k)
    for n, h, w in SHAPES:
        x = torch.randn(n, channels, h, w, generator=gen)
        offsets = _offsets(n, groups, h, w, k, gen)
        expected = LaU(k)(x, offsets)
        got = _run(path, x, offsets)
        assert got.shape == (n, channels, k_h * h, k_w * w)
        np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=ATOL,
                                   err_msg=f"k={k} C={channels} G={groups} N,h,w={n, h, w}")


def test_border_clamp_is_the_kernels_not_grid_samples(tmp_path, lau_ext):
    """Coordinates past the border replicate the edge row/column (clamp, then
    interpolate); base coordinate i/k, not an align_corners convention."""
    path = _export(str(tmp_path / "lau.onnx"), 2, 1, 1, True, 18)
    x = torch.arange(6.0).view(1, 1, 2, 3)  # rows [0 1 2], [3 4 5]
    zeros = torch.zeros(1, 2, 4, 6)
    # zero offsets: pixel (i, j) samples (i/2, j/2): row 1.5 clamps... no: i/2 <= 1.5
    got = _run(path, x, zeros)[0, 0]
    ys = np.minimum(np.arange(4) / 2, 1)
    xs = np.minimum(np.arange(6) / 2, 2)
    np.testing.assert_allclose(got, 3 * ys[:, None] + xs[None, :], atol=1e-6)
    # +0.7 rows / -0.6 cols: clamped to [0, 1] x [0, 2], then interpolated
    shift = torch.stack([torch.full((4, 6), 0.7), torch.full((4, 6), -0.6)])[None]
    got = _run(path, x, shift)[0, 0]
    ys = np.clip(np.arange(4) / 2 + 0.7, 0, 1)
    xs = np.clip(np.arange(6) / 2 - 0.6, 0, 2)
    np.testing.assert_allclose(got, 3 * ys[:, None] + xs[None, :], atol=1e-6)
    np.testing.assert_allclose(got, LaU(2)(x, shift)[0, 0].numpy(), atol=1e-6)


def test_nan_offsets_give_nan_for_their_group(tmp_path, lau_ext):
    path = _export(str(tmp_path / "lau.onnx"), 2, 4, 2, True, 18)
    x = torch.randn(1, 4, 3, 3)
    offsets = torch.zeros(1, 4, 6, 6)
    offsets[0, 1, 2, 3] = float("nan")  # group 0 (channels 0, 1), pixel (2, 3)
    got = _run(path, x, offsets)
    expected = LaU(2)(x, offsets).numpy()
    assert np.isnan(got[0, :2, 2, 3]).all() and not np.isnan(got[0, 2:]).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(expected), atol=ATOL)


@pytest.mark.parametrize("opset", [16, 20])
def test_other_opsets(tmp_path, lau_ext, opset):
    path = _export(str(tmp_path / "lau.onnx"), 4, 2, 1, True, opset)
    model = onnx.load(path)
    assert {o.domain: o.version for o in model.opset_import}.get("", None) == opset
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 5, 7, generator=gen)
    offsets = _offsets(1, 1, 5, 7, 4, gen)
    np.testing.assert_allclose(_run(path, x, offsets), LaU(4)(x, offsets).numpy(),
                               rtol=0, atol=ATOL)


def test_opset_below_16_is_refused():
    with pytest.raises(ValueError, match=f"opset >= {MIN_OPSET}"):
        lau_onnxscript_function(15)


def test_torchscript_opset_below_16_is_refused(tmp_path, lau_ext):
    register_torchscript_symbolic()
    x, offsets = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 6, 6)
    with pytest.raises(Exception, match=f"opset >= {MIN_OPSET}"):
        torch.onnx.export(LaU(2), (x, offsets), str(tmp_path / "old.onnx"), dynamo=False,
                          opset_version=15)
