"""Cityscapes gtFine -> COCO-panoptic JSON + PNGs, as cityscapesScripts'
``createPanopticImgs`` writes them (what ``CityscapesPanopticDataset`` and
``CityscapesPanopticMetric`` read).

    python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes
    python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes \
        --splits val --out-dir /tmp/gt

Input: the official download under ROOT (gtFine_trainvaltest.zip and
leftImg8bit_trainvaltest.zip unpacked)::

    ROOT/gtFine/{split}/{city}/*_gtFine_instanceIds.png  (or *_gtFine_polygons.json)
    ROOT/leftImg8bit/{split}/{city}/*_leftImg8bit.png

Output (default ``--out-dir ROOT/gtFine``): ``cityscapes_panoptic_{split}.json`` and
``cityscapes_panoptic_{split}/*_gtFine_panoptic.png``. Category ids are Cityscapes
labelIds (``--use-train-id``: trainIds, files named ``*_trainId``); the 19
evaluated classes are kept, ``ignoreInEval`` ones become void. Where a
``*_instanceIds.png`` is missing it is first drawn from its ``*_polygons.json``
(as cityscapesScripts' ``json2instanceImg`` does) next to it.
"""
import argparse
import contextlib
import glob
import io
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmext.engine.errors import run_cli  # noqa: E402
from mmext.utils.errors import UserError  # noqa: E402

_LAYOUT = ('ROOT/gtFine/{split}/{city}/*_gtFine_instanceIds.png (or '
           '*_gtFine_polygons.json) and ROOT/leftImg8bit/{split}/{city}/'
           '*_leftImg8bit.png, i.e. the unpacked gtFine_trainvaltest.zip and '
           'leftImg8bit_trainvaltest.zip')


def make_instance_ids(split_dir: str) -> int:
    """Draw the ``*_instanceIds.png`` missing next to ``*_polygons.json`` files.

    Uses cityscapesScripts' drawing (``json2instanceImg.createInstanceImage``)
    but writes the (H, W) uint16 PNG with OpenCV: its own ``json2instanceImg``
    saves a PIL mode-"I" image, which Pillow >= 11 refuses to write as PNG.

    Returns:
        How many were written.
    """
    import cv2
    import numpy as np
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    written = 0
    for poly in sorted(glob.glob(osp.join(split_dir, '*', '*_gtFine_polygons.json'))):
        png = poly.replace('_polygons.json', '_instanceIds.png')
        if osp.isfile(png):
            continue
        annotation = Annotation()
        annotation.fromJsonFile(poly)
        ids = np.array(createInstanceImage(annotation, 'ids'), dtype=np.int64)
        if not cv2.imwrite(png, ids.astype(np.uint16)):
            raise UserError(f"could not write '{png}' (is the folder writable?)")
        written += 1
    return written


def convert(root: str,
            splits: Sequence[str] = ('train', 'val'),
            out_dir: Optional[str] = None,
            use_train_id: bool = False,
            quiet: bool = False) -> List[str]:
    """Write the panoptic GT of ``splits``; return the JSON paths.

    Args:
        root: the Cityscapes folder (holding ``gtFine/``).
        splits: e.g. ``('train', 'val')``.
        out_dir: default ``{root}/gtFine``.
        use_train_id: category ids = trainIds instead of labelIds.
        quiet: swallow cityscapesScripts' progress prints.
    """
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
    gt_dir = osp.join(root, 'gtFine')
    if not osp.isdir(gt_dir):
        raise UserError(f"'{gt_dir}' not found; expected the Cityscapes download "
                        f'under {root}: {_LAYOUT}')
    for split in splits:
        split_dir = osp.join(gt_dir, split)
        if not osp.isdir(split_dir):
            raise UserError(f"'{split_dir}' not found (split '{split}'); expected "
                            f'{_LAYOUT}')
        made = make_instance_ids(split_dir)
        if made and not quiet:
            print(f'drew {made} *_gtFine_instanceIds.png from polygons in {split_dir}')
        if not glob.glob(osp.join(split_dir, '*', '*_gtFine_instanceIds.png')):
            raise UserError(f"no *_gtFine_instanceIds.png or *_gtFine_polygons.json "
                            f"in '{split_dir}/<city>/'; expected {_LAYOUT}")

    out_dir = out_dir or gt_dir
    os.makedirs(out_dir, exist_ok=True)  # convert2panoptic only makes its PNG folder
    sink = io.StringIO() if quiet else sys.stdout
    with contextlib.redirect_stdout(sink):
        convert2panoptic(gt_dir, out_dir, use_train_id, list(splits))
    suffix = '_trainId' if use_train_id else ''
    return [osp.join(out_dir, f'cityscapes_panoptic_{s}{suffix}.json') for s in splits]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Cityscapes gtFine -> COCO-panoptic JSON + PNGs '
        '(cityscapesScripts createPanopticImgs)')
    parser.add_argument('root',
                        help='Cityscapes folder holding gtFine/ and leftImg8bit/')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='splits to convert (default: train val)')
    parser.add_argument('--out-dir', help='output folder (default: ROOT/gtFine)')
    parser.add_argument('--use-train-id', action='store_true',
                        help='category ids = trainIds (files named *_trainId)')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    args = parser.parse_args(argv)
    for path in convert(args.root, args.splits, args.out_dir, args.use_train_id,
                        args.quiet):
        print(f'wrote {path} and {osp.splitext(path)[0]}/')


if __name__ == '__main__':
    run_cli(main)
