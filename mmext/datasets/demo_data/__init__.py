"""Deterministic synthetic demo data for mmext's demos and tests.

Each scene is a few "stuff" regions (sky / grass / water bands with curved,
sinusoidal boundaries plus an optional blob) with "things" (circles,
triangles, squares) painted on top. Things have random colours unrelated to
their class, varied sizes (~12-70 px at 160 px), mild aspect jitter, shading
and noise, and are often placed on top of each other so that occlusion
happens. The same scenes are written in every format the repo consumes::

    <root>/
      .complete                                  # marker: version + args hash
      images/{train,val}/NNNNNN.png              # RGB images (id = NNNNNN)
      annotations/instances_{split}.json         # COCO instances (things only)
      annotations/panoptic_{split}.json          # COCO panoptic
      annotations/panoptic_{split}/NNNNNN.png    # COCO panoptic id PNGs
      seg/{split}/NNNNNN.png                     # semantic labels (uint8, 255 = ignore)
      cityscapes/leftImg8bit/{split}/demo/demo_NNNNNN_000019_leftImg8bit.png
      cityscapes/gtFine/{split}/demo/demo_NNNNNN_000019_gtFine_labelIds.png
      cityscapes/gtFine/{split}/demo/demo_NNNNNN_000019_gtFine_instanceIds.png
      cityscapes/gtFine/cityscapes_panoptic_{split}.json
      cityscapes/gtFine/cityscapes_panoptic_{split}/demo_NNNNNN_000019_gtFine_panoptic.png

The Cityscapes panoptic JSON has the same ``images`` and ``annotations`` that
cityscapesscripts' ``createPanopticImgs`` writes from the gtFine instanceIds
(tests/datasets/test_cityscapes_panoptic.py regenerates and compares them);
its ``categories`` are the 6 demo classes under demo names (createPanopticImgs
lists the 19 real Cityscapes ones) and it is written without indentation. It
keeps createPanopticImgs' quirk of listing images as
``*_gtFine_leftImg8bit.png``: locate an image as
``leftImg8bit/{split}/demo/{image_id}_leftImg8bit.png``.

Label conventions:

* Thing masks are identical in every format (instances JSON bbox/area equal
  the panoptic thing segments). Stuff pixels 4-adjacent to a thing form a
  1-px "ring" that is ignore/void everywhere (semantic 255, COCO panoptic
  id 0, Cityscapes labelId 0) so that ignore handling gets exercised.
* COCO category ids: things 1..3, stuff 4..6 (one id space); semantic label
  = COCO category id - 1 (i.e. index into ``SEGMENTATION_METAINFO``).
* COCO panoptic segment ids: thing = 1000 * category_id + k, stuff =
  category_id, void = 0. Cityscapes ids follow ``createPanopticImgs``: thing =
  labelId * 1000 + k, stuff = labelId (k = per-class instance counter).

Modules: ``constants`` (classes, ids, metainfo), ``textures`` + ``shapes`` +
``render`` (the scene renderer), ``labels`` (per-pixel truth of a scene),
``encoding`` (boxes, polygons, PNG/JSON bytes), ``writers/`` (one writer per
format: images, COCO instances, COCO panoptic, semantic, Cityscapes), ``cache``
(marker, atomic publication); this module only drives them.

Only numpy, OpenCV, json and tqdm are used so that this package can run before
(and without) the OpenMMLab stack: it imports nothing outside itself.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .cache import MARKER, is_demo_data_complete, marker_text, publish
from .constants import (CITYSCAPES_CATEGORIES, CITYSCAPES_LABEL_IDS,
                        COCO_CATEGORY_IDS, DEMO_ROOT, DETECTION_METAINFO,
                        GENERATOR_VERSION, IGNORE_INDEX, MIN_VISIBLE_AREA,
                        PANOPTIC_METAINFO, SEGMENTATION_METAINFO, SPLIT_CODE,
                        SPLITS, STUFF_CLASSES, STUFF_PALETTE, THING_CLASSES,
                        THING_PALETTE, VOID_ID)
from .labels import Sample
from .render import render_scene
from .writers import make_writers

try:  # tqdm is a soft dependency: only the progress bar needs it
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

__all__ = [
    'THING_CLASSES', 'STUFF_CLASSES', 'THING_PALETTE', 'STUFF_PALETTE',
    'DEMO_ROOT', 'GENERATOR_VERSION', 'COCO_CATEGORY_IDS',
    'CITYSCAPES_LABEL_IDS', 'CITYSCAPES_CATEGORIES', 'IGNORE_INDEX',
    'VOID_ID', 'DETECTION_METAINFO', 'PANOPTIC_METAINFO',
    'SEGMENTATION_METAINFO', 'MARKER', 'MIN_VISIBLE_AREA',
    'generate_demo_data', 'ensure_demo_data', 'is_demo_data_complete',
    'render_scene'
]


def _generate_split(root: Path, split: str, num: int, size: int, seed: int,
                    bar) -> None:
    """Render ``num`` scenes of ``split`` and hand each to every format's writer."""
    writers = make_writers(root, split)
    for index in range(num):
        # Each image has its own stream: changing one never shifts the others.
        rng = np.random.default_rng(
            np.random.SeedSequence([seed, SPLIT_CODE[split], index]))
        sample = Sample(image_id=index + 1, scene=render_scene(rng, size))
        for writer in writers:
            writer.add(sample)
        if bar is not None:
            bar.update(1)
    for writer in writers:
        writer.finish()


def generate_demo_data(root: str | os.PathLike = DEMO_ROOT,
                       num_train: int = 400,
                       num_val: int = 100,
                       image_size: int = 160,
                       seed: int = 0,
                       progress: bool = True) -> Path:
    """(Re)generate the demo data set under ``root`` and return its path.

    The output depends only on the arguments (and ``GENERATOR_VERSION``):
    every image uses its own random stream derived from
    ``(seed, split, index)``. Files are written to a temporary sibling folder
    which then replaces ``root`` by renaming, so readers never see a partial
    set. Whatever was in ``root`` before is discarded.
    """
    return _generate(root, num_train, num_val, image_size, seed, progress,
                     keep_identical=False)


def _generate(root: str | os.PathLike, num_train: int, num_val: int,
              image_size: int, seed: int, progress: bool,
              keep_identical: bool) -> Path:
    """Generate into a temporary sibling of ``root``, then publish it there."""
    if min(num_train, num_val) < 1 or image_size < 32 or seed < 0:
        raise ValueError('need num_train, num_val >= 1, image_size >= 32 '
                         'and seed >= 0')
    root = Path(root).absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    marker = marker_text(num_train, num_val, image_size, seed)
    tmp = root.with_name(f'.{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}')
    tmp.mkdir()
    bar = None
    if progress and tqdm is not None:
        bar = tqdm(total=num_train + num_val, desc='demo data', unit='img')
    try:
        for split, num in zip(SPLITS, (num_train, num_val)):
            _generate_split(tmp, split, num, image_size, seed, bar)
        (tmp / MARKER).write_text(marker, encoding='utf-8')
        publish(tmp, root, marker, keep_identical)
    finally:
        if bar is not None:
            bar.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_demo_data(root: str | os.PathLike = DEMO_ROOT,
                     num_train: int = 400,
                     num_val: int = 100,
                     image_size: int = 160,
                     seed: int = 0,
                     progress: bool = True) -> Path:
    """Return ``root``, generating the demo data first if missing or stale.

    Cheap when the data exists: only the ``.complete`` marker is read.
    """
    if is_demo_data_complete(root, num_train, num_val, image_size, seed):
        return Path(root).absolute()
    # keep_identical: if a concurrent process finishes first, use its copy
    return _generate(root, num_train, num_val, image_size, seed, progress,
                     keep_identical=True)
