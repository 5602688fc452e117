"""Independent numpy port of the official LaU CUDA kernel (test oracle only).

Source read: HolmesShuan/Location-aware-Upsampling-for-Semantic-Segmentation at
83822e8, ``LaU/src/cuda/lau_cuda_kernel.cuh`` (forward: ``lau_micro_bilinear``
L24-L70 and ``lau_bilinear_gpu_kernel`` L206-L252; backward:
``lau_micro_coord_bilinear`` L130-L204 and ``lau_bilinear_coord_gpu_kernel``
L348-L394). Written from the kernel's arithmetic, not from mmext's code, and
with numpy only (no torch), so a misunderstanding shared by mmext's kernels
and its reference cannot hide. The official op takes one (row, column)
offset pair per channel (``offset_x`` = rows, ``offset_y`` = columns, both
(N, C, k_h*h, k_w*w)); its model repeats a shared pair over the channels
(``encoding/models/util.py`` L49-L52), i.e. mmext's G = 1.

Per output element (n, c, i, j), in the input's float type:
  k_h = H_out / h (integer division), h_im = i / k_h + off_h (likewise w);
  clamp h_im to [0, h-1]; lo = floor, hi = ceil; ne_h = (lo != hi);
  lh = h - lo, hh = 1 - lh (likewise w);
  v1 = x[lo_h, lo_w], v2 = x[lo_h, hi_w] * ne_w, v3 = x[hi_h, lo_w] * ne_h,
  v4 = x[hi_h, hi_w] * ne_h * ne_w;
  out = hh*hw*v1 + hh*lw*v2 + lh*hw*v3 + lh*lw*v4;
  grad_off_h = (-hw*v1 - lw*v2 + hw*v3 + lw*v4) * g   if 0 <= h_im(unclamped) <= h-1 else 0;
  grad_off_w = (-hh*v1 + hh*v2 - lh*v3 + lh*v4) * g   if 0 <= w_im(unclamped) <= w-1 else 0;
  grad_x[lo_h, lo_w] += g*hh*hw; [lo_h, hi_w] += g*hh*lw if ne_w;
  [hi_h, lo_w] += g*lh*hw if ne_h; [hi_h, hi_w] += g*lh*lw if ne_h and ne_w.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def official_lau(
    x: np.ndarray, off_h: np.ndarray, off_w: np.ndarray, k_h: int, k_w: int, grad_out: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Official forward and backward, vectorised over the pixels of one plane.

    Args:
        x: (N, C, h, w); off_h, off_w: (N, C, k_h*h, k_w*w); grad_out like the
            output. All of one float dtype (float32 or float64), used for the
            arithmetic as the kernel's ``scalar_t``.

    Returns:
        out, grad_x, grad_off_h, grad_off_w (per channel, like the official op).
    """
    dt = x.dtype.type
    n_, c_, h, w = x.shape
    H, W = h * k_h, w * k_w
    kh = dt(H // h)  # int / int, then stored in scalar_t
    kw = dt(W // w)
    rows = np.arange(H).astype(dt)[:, None] / kh  # h_col / k_h in scalar_t
    cols = np.arange(W).astype(dt)[None, :] / kw
    out = np.zeros((n_, c_, H, W), dtype=dt)
    grad_x = np.zeros_like(x)
    g_h = np.zeros((n_, c_, H, W), dtype=dt)
    g_w = np.zeros((n_, c_, H, W), dtype=dt)
    one = dt(1)
    for n in range(n_):
        for c in range(c_):
            img = x[n, c]
            hu = (rows + off_h[n, c]).astype(dt)  # unclamped, kept for the mask
            wu = (cols + off_w[n, c]).astype(dt)
            hc = np.minimum(np.maximum(hu, dt(0)), dt(h - 1))
            wc = np.minimum(np.maximum(wu, dt(0)), dt(w - 1))
            lo_h, hi_h = np.floor(hc).astype(np.int64), np.ceil(hc).astype(np.int64)
            lo_w, hi_w = np.floor(wc).astype(np.int64), np.ceil(wc).astype(np.int64)
            ne_h = (lo_h != hi_h).astype(dt)
            ne_w = (lo_w != hi_w).astype(dt)
            lh = (hc - lo_h.astype(dt)).astype(dt)
            lw = (wc - lo_w.astype(dt)).astype(dt)
            hh, hw = one - lh, one - lw
            v1 = img[lo_h, lo_w]
            v2 = img[lo_h, hi_w] * ne_w
            v3 = img[hi_h, lo_w] * ne_h
            v4 = img[hi_h, hi_w] * ne_h * ne_w
            out[n, c] = hh * hw * v1 + hh * lw * v2 + lh * hw * v3 + lh * lw * v4
            g = grad_out[n, c]
            in_h = (hu <= dt(h - 1)) & (hu >= dt(0))
            in_w = (wu <= dt(w - 1)) & (wu >= dt(0))
            g_h[n, c] = np.where(in_h, (-hw * v1 - lw * v2 + hw * v3 + lw * v4) * g, dt(0))
            g_w[n, c] = np.where(in_w, (-hh * v1 + hh * v2 - lh * v3 + lh * v4) * g, dt(0))
            flat = grad_x[n, c].reshape(-1)  # view: np.add.at accumulates repeats
            np.add.at(flat, (lo_h * w + lo_w).ravel(), (g * hh * hw).ravel())
            m = ne_w != 0
            np.add.at(flat, (lo_h * w + hi_w)[m], (g * hh * lw)[m])
            m = ne_h != 0
            np.add.at(flat, (hi_h * w + lo_w)[m], (g * lh * hw)[m])
            m = (ne_h != 0) & (ne_w != 0)
            np.add.at(flat, (hi_h * w + hi_w)[m], (g * lh * lw)[m])
    return out, grad_x, g_h, g_w


def official_lau_grouped(
    x: np.ndarray, offsets: np.ndarray, k_h: int, k_w: int, grad_out: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmext's layout on top of the official op: offsets (N, 2G, H, W) with
    [dy_g, dx_g] pairs are repeated over the C/G channels of each group (as
    the official model does for G = 1) and the per-channel offset gradients
    summed back over the group (the autograd of that repeat).

    Returns:
        out, grad_x, grad_offsets (N, 2G, H, W).
    """
    n_, c_ = x.shape[:2]
    g_ = offsets.shape[1] // 2
    cg = c_ // g_
    off_h = np.repeat(offsets[:, 0::2], cg, axis=1)
    off_w = np.repeat(offsets[:, 1::2], cg, axis=1)
    out, grad_x, g_h, g_w = official_lau(x, off_h, off_w, k_h, k_w, grad_out)
    H, W = out.shape[2:]
    grad_off = np.empty_like(offsets)
    grad_off[:, 0::2] = g_h.reshape(n_, g_, cg, H, W).sum(axis=2)
    grad_off[:, 1::2] = g_w.reshape(n_, g_, cg, H, W).sum(axis=2)
    return out, grad_x, grad_off
