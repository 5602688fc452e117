"""Things of a demo scene: sampling, rasterising, occlusion order and pruning."""
from __future__ import annotations

from typing import List, Sequence

import cv2
import numpy as np

from .constants import MIN_VISIBLE_AREA, NUM_THINGS, THING_CLASSES

# Geometry at the reference size of 160 px; scaled linearly to image_size.
_REF_SIZE = 160.0
_MIN_THING_SIZE = 12.0
_MAX_THING_SIZE = 70.0


def thing_mask(shape: dict, size: int) -> np.ndarray:
    """Rasterise one thing (hard edges, sub-pixel accurate via ``shift``)."""
    mask = np.zeros((size, size), np.uint8)
    cx, cy, s, ang, asp = (shape['cx'], shape['cy'], shape['size'],
                           shape['angle'], shape['aspect'])
    sx, sy = np.sqrt(asp), 1.0 / np.sqrt(asp)  # area-preserving aspect
    name = THING_CLASSES[shape['label']]
    if name == 'circle':
        axes = (int(round(s / 2 * sx * 16)), int(round(s / 2 * sy * 16)))
        cv2.ellipse(mask, (int(round(cx * 16)), int(round(cy * 16))), axes,
                    np.degrees(ang), 0, 360, 1, -1, cv2.LINE_8, 4)
        return mask
    if name == 'triangle':
        t = np.array([-90, 30, 150], np.float32) * np.pi / 180
        pts = np.stack([np.cos(t), np.sin(t)], 1) * (0.55 * s)
    else:  # square
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]],
                       np.float32) * (0.375 * s)
    pts = pts * np.array([sx, sy], np.float32)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang),
                                                  np.cos(ang)]], np.float32)
    pts = pts @ rot.T + np.array([cx, cy], np.float32)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8,
                 4)
    return mask


def sample_shapes(rng: np.random.Generator, size: int) -> List[dict]:
    """Sample 2-7 things; ~40% are placed overlapping an earlier one."""
    scale = size / _REF_SIZE
    smin = max(6.0, _MIN_THING_SIZE * scale)
    smax = max(smin + 1, _MAX_THING_SIZE * scale)
    shapes: List[dict] = []
    for _ in range(int(rng.integers(2, 8))):
        s = float(np.exp(rng.uniform(np.log(smin), np.log(smax))))
        if shapes and rng.random() < 0.4:
            anchor = shapes[int(rng.integers(len(shapes)))]
            d = rng.uniform(0.25, 0.75) * (s + anchor['size']) / 2
            t = rng.uniform(0, 2 * np.pi)
            cx = anchor['cx'] + d * np.cos(t)
            cy = anchor['cy'] + d * np.sin(t)
        else:
            cx, cy = rng.uniform(0, size, 2)
        shapes.append(
            dict(
                label=int(rng.integers(NUM_THINGS)),
                cx=float(np.clip(cx, 0, size - 1)),
                cy=float(np.clip(cy, 0, size - 1)),
                size=s,
                angle=float(rng.uniform(0, 2 * np.pi)),
                aspect=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))))
    return shapes


def owner_map(masks: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Index of the top-most thing at each pixel, -1 for stuff."""
    owner = np.full((size, size), -1, np.int32)
    for i, m in enumerate(masks):
        owner[m > 0] = i
    return owner


def prune(masks: List[np.ndarray], size: int) -> List[int]:
    """Indices of things to keep so that every visible mask is usable.

    Removes (iteratively) things whose visible part is tiny or sliver-like,
    and top-most occluders that punch a hole into a thing below (COCO
    polygons cannot represent holes, so they would disagree with the PNGs).
    """
    keep = list(range(len(masks)))
    changed = True
    while changed and keep:
        changed = False
        owner = owner_map([masks[k] for k in keep], size)
        for j in range(len(keep)):
            vis = (owner == j).astype(np.uint8)
            area = int(vis.sum())
            if area < MIN_VISIBLE_AREA:
                del keep[j]
                changed = True
                break
            contours, hier = cv2.findContours(vis, cv2.RETR_CCOMP,
                                              cv2.CHAIN_APPROX_SIMPLE)
            if (hier[0][:, 3] >= 0).any():  # has a hole
                filled = np.zeros_like(vis)
                cv2.drawContours(filled, contours, -1, 1, -1)
                holes = owner[(filled > 0) & (vis == 0)]
                holes = holes[holes > j]
                if holes.size:
                    del keep[int(holes.max())]
                    changed = True
                    break
            poly_area = sum(
                cv2.contourArea(c) for c, h in zip(contours, hier[0])
                if h[3] < 0)
            if poly_area < 0.5 * area:  # mostly 1-2 px wide slivers
                del keep[j]
                changed = True
                break
    return keep

