"""Stuff backgrounds of a demo scene: curved bands of sky / grass / water, textured."""
from __future__ import annotations

import cv2
import numpy as np

from .constants import STUFF_CLASSES


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """HSV (h in degrees, s/v in [0, 1]) to an RGB float32 triple in 0-255."""
    hsv = np.array([[[h % 360.0, s, v]]], dtype=np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] * 255.0


def _lowfreq_noise(rng: np.random.Generator, size: int,
                   cells: int) -> np.ndarray:
    """Smooth noise in ~[-1, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def stuff_texture(rng: np.random.Generator, name: str,
                   size: int) -> np.ndarray:
    """Full-image HxWx3 float32 texture of one stuff class.

    Hue ranges of sky and water overlap on purpose: they are told apart by
    texture (smooth gradient + clouds vs. ripples), not by colour alone.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if name == 'sky':
        base = hsv_to_rgb(
            rng.uniform(190, 225), rng.uniform(0.25, 0.6),
            rng.uniform(0.7, 0.95))
        shade = 30.0 * (yy - 0.5)  # lighter towards the horizon
        clouds = np.clip(_lowfreq_noise(rng, size, 4), 0, None) * 22.0
        tex = base[None, None] + (shade + clouds)[..., None]
    elif name == 'grass':
        base = hsv_to_rgb(
            rng.uniform(70, 135), rng.uniform(0.4, 0.8),
            rng.uniform(0.35, 0.7))
        fine = rng.standard_normal((size, size), dtype=np.float32)
        fine = cv2.GaussianBlur(fine, (3, 3), 0.8) * 22.0
        patches = _lowfreq_noise(rng, size, 8) * 12.0
        tex = base[None, None] + (fine + patches)[..., None]
    elif name == 'water':
        base = hsv_to_rgb(
            rng.uniform(175, 235), rng.uniform(0.45, 0.85),
            rng.uniform(0.35, 0.7))
        period = rng.uniform(0.035, 0.07)  # ripple period, fraction of H
        phase = 2.5 * np.sin(2 * np.pi * xx * rng.uniform(1.0, 3.0) +
                             rng.uniform(0, 2 * np.pi))
        ripples = 16.0 * np.sin(2 * np.pi * yy / period + phase)
        tex = base[None, None] + (ripples +
                                  _lowfreq_noise(rng, size, 4) * 8.0)[..., None]
    else:  # pragma: no cover
        raise ValueError(name)
    return tex.astype(np.float32)


def stuff_map(rng: np.random.Generator, size: int) -> np.ndarray:
    """HxW int array of stuff indices: 2-3 curved bands and maybe a blob."""
    num_bands = 2 if rng.random() < 0.4 else 3
    order = rng.permutation(len(STUFF_CLASSES))[:num_bands]
    x = np.arange(size, dtype=np.float32) / size
    # Sorted boundary heights with a minimum gap, so each band is visible.
    gap = 0.18
    free = 1.0 - 0.2 - gap * (num_bands - 1)
    offs = np.sort(rng.uniform(0, free, num_bands - 1))
    bases = 0.1 + offs + gap * np.arange(num_bands - 1)
    yy = np.arange(size, dtype=np.float32)[:, None] / size
    band = np.zeros((size, size), dtype=np.int64)
    for b in bases:
        curve = np.full_like(x, b)
        curve += rng.uniform(-0.15, 0.15) * (x - 0.5)  # tilt
        for _ in range(2):  # sum of two sines -> wavy, curved boundary
            curve += rng.uniform(0.02, 0.07) * np.sin(
                2 * np.pi * rng.uniform(0.5, 2.0) * x +
                rng.uniform(0, 2 * np.pi))
        band += (yy > curve[None, :])
    stuff = order[band]
    if rng.random() < 0.35:  # a blob (pond / bush / patch of sky)
        cls = int(rng.integers(len(STUFF_CLASSES)))
        c = rng.uniform(0.2, 0.8, 2) * size
        r = rng.uniform(0.12, 0.25) * size
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        rad = r * (1 + 0.25 * np.sin(3 * ang + rng.uniform(0, 6.3)) +
                   rng.uniform(-0.1, 0.1, ang.size))
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + 0.6 * rad *
                        np.sin(ang)], 1)
        blob = np.zeros((size, size), np.uint8)
        cv2.fillPoly(blob, [np.round(pts * 16).astype(np.int32)], 1,
                     cv2.LINE_8, 4)
        stuff[blob > 0] = cls
    return stuff

