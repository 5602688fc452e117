"""The scene renderer: one demo image and the per-pixel truth behind every format."""
from __future__ import annotations

from typing import List

import cv2
import numpy as np

from .constants import STUFF_CLASSES
from .shapes import owner_map, prune, sample_shapes, thing_mask
from .textures import hsv_to_rgb, stuff_map, stuff_texture

_MIN_CONTRAST = 70.0  # RGB L2 distance between a thing and what is under it
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def render_scene(rng: np.random.Generator, size: int) -> dict:
    """Render one scene.

    Returns:
        dict: ``image`` (HxWx3 uint8 RGB), ``stuff`` (HxW stuff indices),
        ``owner`` (HxW index into ``things`` or -1), ``things`` (list of
        thing labels, bottom to top), ``ring`` (HxW bool void ring).
    """
    stuff = stuff_map(rng, size)
    canvas = np.zeros((size, size, 3), np.float32)
    for cls in np.unique(stuff):
        tex = stuff_texture(rng, STUFF_CLASSES[cls], size)
        sel = stuff == cls
        canvas[sel] = tex[sel]

    shapes = sample_shapes(rng, size)
    masks = [thing_mask(s, size) for s in shapes]
    keep = prune(masks, size)
    shapes = [shapes[k] for k in keep]
    masks = [masks[k] for k in keep]
    _paint_things(rng, canvas, shapes, masks)

    # Global degradations: soft edges, brightness/contrast jitter, noise.
    canvas = cv2.GaussianBlur(canvas, (3, 3), 0.6)
    canvas = canvas * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
    canvas += rng.normal(0, 3, canvas.shape).astype(np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)

    owner = owner_map(masks, size)
    is_thing = (owner >= 0).astype(np.uint8)
    ring = (cv2.dilate(is_thing, _CROSS) > 0) & (is_thing == 0)
    return dict(
        image=image,
        stuff=stuff,
        owner=owner,
        things=[s['label'] for s in shapes],
        ring=ring)


def _paint_things(rng: np.random.Generator, canvas: np.ndarray,
                  shapes: List[dict], masks: List[np.ndarray]) -> None:
    """Paint the things bottom to top into ``canvas`` (HxWx3 float32, in place)."""
    size = canvas.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for shape, mask in zip(shapes, masks):
        sel = mask > 0
        under = canvas[sel].mean(0)
        # Random colour independent of the class, but distinguishable from
        # what lies underneath (otherwise the label would be unlearnable).
        for _ in range(12):
            color = hsv_to_rgb(
                rng.uniform(0, 360), rng.uniform(0.35, 1.0),
                rng.uniform(0.35, 1.0))
            if np.linalg.norm(color - under) >= _MIN_CONTRAST:
                break
        phi = rng.uniform(0, 2 * np.pi)
        grad = ((xx[sel] - shape['cx']) * np.cos(phi) +
                (yy[sel] - shape['cy']) * np.sin(phi)) / (shape['size'] / 2)
        shade = rng.uniform(10, 35) * grad
        noise = rng.normal(0, 5, sel.sum()).astype(np.float32)
        canvas[sel] = color[None] + (shade + noise)[:, None]
