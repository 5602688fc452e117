"""Encoders shared by the writers: boxes, polygons, segments, PNG and JSON bytes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

import cv2
import numpy as np

from .constants import GENERATOR_VERSION, VOID_ID


def bbox(mask: np.ndarray) -> List[int]:
    """[x, y, w, h] of the non-zero pixels (pixel-corner convention)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return [int(x), int(y), int(w), int(h)]


def polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons of a hole-free mask, through boundary pixel centres."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3:  # at least a triangle (6 coordinates)
            polys.append([float(v) + 0.5 for v in c.reshape(-1).tolist()])
    return polys


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Panoptic id map (HxW) to an HxWx3 RGB uint8 image (id = R + 256 G + 256^2 B)."""
    ids = ids.astype(np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256],
                    -1).astype(np.uint8)


def png_bytes(arr: np.ndarray, rgb: bool = False) -> bytes:
    """Encode as PNG; ``rgb`` arrays are converted to OpenCV's BGR order."""
    if rgb:
        arr = np.ascontiguousarray(arr[..., ::-1])
    ok, buf = cv2.imencode('.png', arr)
    if not ok:  # pragma: no cover
        raise RuntimeError('PNG encoding failed')
    return buf.tobytes()


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``dst`` to ``src`` (same bytes) to halve the disk use."""
    try:
        os.link(src, dst)
    except OSError:  # e.g. file systems without hard links
        dst.write_bytes(src.read_bytes())


def segment_category(segment_id: int) -> int:
    """Category of a panoptic segment id: thing ``1000 * id + k``, stuff ``id``."""
    return segment_id // 1000 if segment_id >= 1000 else segment_id


def segments(ids: np.ndarray) -> List[dict]:
    """COCO panoptic ``segments_info`` of every non-void id of ``ids`` (HxW), ascending."""
    segs = []
    for seg_id in np.unique(ids):
        if seg_id == VOID_ID:
            continue
        mask = ids == seg_id
        segs.append(
            dict(
                id=int(seg_id),
                category_id=int(segment_category(int(seg_id))),
                iscrowd=0,
                bbox=bbox(mask),
                area=int(mask.sum())))
    return segs


def dump_json(path: Path, obj: dict) -> None:
    """Write ``obj`` compactly; sort_keys + fixed separators: equal input, equal bytes."""
    path.write_text(
        json.dumps(obj, sort_keys=True, separators=(',', ':')),
        encoding='utf-8')


def dump_coco(path: Path, images: List[dict], annotations: List[dict],
              categories: List[dict]) -> None:
    """Write a COCO-format JSON (instances or panoptic) with our ``info`` block."""
    info = dict(description='mmext synthetic demo data', version=str(GENERATOR_VERSION),
                url='', contributor='mmext', year=2024, date_created='')
    dump_json(path, dict(info=info, licenses=[], images=images,
                         annotations=annotations, categories=categories))


def coco_image(sample) -> dict:
    """The COCO ``images`` entry of a :class:`~.labels.Sample`."""
    return dict(id=sample.image_id, file_name=sample.name, width=sample.size,
                height=sample.size)
