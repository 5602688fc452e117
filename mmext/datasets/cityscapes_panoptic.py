"""Cityscapes panoptic segmentation for mmdet (``CocoPanopticDataset`` style).

Reads the COCO-panoptic JSON + PNG folder that cityscapesScripts'
``createPanopticImgs`` writes (``tools/dataset_converters/cityscapes_panoptic.py``
wraps it)::

    data/cityscapes/
      leftImg8bit/{split}/{city}/{image_id}_leftImg8bit.png
      gtFine/cityscapes_panoptic_{split}.json
      gtFine/cityscapes_panoptic_{split}/{image_id}_gtFine_panoptic.png

and yields the same ``data_list`` items as mmdet's ``CocoPanopticDataset``, so
``LoadPanopticAnnotations`` / ``PackDetInputs`` / ``CocoPanopticMetric`` work on
them unchanged.
"""
import os.path as osp
import re
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

from mmengine.fileio import get_local_path, load
from mmdet.datasets import CocoPanopticDataset
from mmdet.registry import DATASETS

from ..utils.cityscapes_categories import CONVERTER_COMMAND, category_ids_by_name
from ..utils.errors import UserError
from .demo_data import DEMO_ROOT, PANOPTIC_METAINFO, ensure_demo_data
from .demo_datasets import _GeneratesDemoData

__all__ = [
    'CITYSCAPES_THING_CLASSES', 'CITYSCAPES_STUFF_CLASSES',
    'CITYSCAPES_PANOPTIC_METAINFO', 'CityscapesPanopticDataset',
    'DemoCityscapesPanopticDataset'
]

# The 19 evaluated Cityscapes classes (``ignoreInEval`` is False), things first
# as mmdet's panoptic heads expect (labels < num_things are things).
CITYSCAPES_THING_CLASSES: Tuple[str, ...] = (
    'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
CITYSCAPES_STUFF_CLASSES: Tuple[str, ...] = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky')
CITYSCAPES_PANOPTIC_METAINFO: Dict[str, Any] = dict(
    classes=CITYSCAPES_THING_CLASSES + CITYSCAPES_STUFF_CLASSES,
    thing_classes=CITYSCAPES_THING_CLASSES,
    stuff_classes=CITYSCAPES_STUFF_CLASSES,
    # cityscapesscripts' label colours
    palette=[(220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
             (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
             (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
             (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
             (107, 142, 35), (152, 251, 152), (70, 130, 180)])

# createPanopticImgs names its outputs cityscapes_panoptic_{split}[_trainId].
_ANN_FILE_NAME = re.compile(r'cityscapes_panoptic_([A-Za-z0-9]+)(_trainId)?\.json$')


def default_data_prefix(ann_file: str) -> Optional[Dict[str, str]]:
    """``data_prefix`` (relative to ``data_root``) implied by ``ann_file``'s name.

    ``gtFine/cityscapes_panoptic_val.json`` -> ``dict(img='leftImg8bit/val/',
    seg='gtFine/cityscapes_panoptic_val/')``; ``None`` for other names.
    """
    match = _ANN_FILE_NAME.search(osp.basename(ann_file or ''))
    if match is None:
        return None
    split = match.group(1)
    return dict(
        img=f'leftImg8bit/{split}/',
        seg=osp.join(osp.dirname(ann_file), match.group(0)[:-len('.json')]) + '/')


def cityscapes_image_path(img_prefix: str, image_id: str) -> str:
    """``{img_prefix}/{city}/{image_id}_leftImg8bit.png``.

    The JSON's ``images[].file_name`` (``*_gtFine_leftImg8bit.png``) is not a
    real file (a createPanopticImgs quirk), so the path comes from the id
    ``{city}_{seq}_{frame}``.
    """
    city = image_id.split('_')[0]
    return osp.join(img_prefix, city, f'{image_id}_leftImg8bit.png')


@DATASETS.register_module()
class CityscapesPanopticDataset(CocoPanopticDataset):
    """Cityscapes panoptic data in createPanopticImgs' COCO-panoptic format.

    Config (``data_prefix`` may be left out when ``ann_file`` has the converter's
    name ``cityscapes_panoptic_{split}.json``: it is then exactly this)::

        dict(type='CityscapesPanopticDataset',
             data_root='data/cityscapes/',
             ann_file='gtFine/cityscapes_panoptic_val.json',
             data_prefix=dict(img='leftImg8bit/val/',
                              seg='gtFine/cityscapes_panoptic_val/'))

    * ``data_prefix.img`` is the split folder; an image is found at
      ``{img}/{city}/{image_id}_leftImg8bit.png`` with ``city =
      image_id.split('_')[0]``.
    * ``data_prefix.seg`` holds the panoptic PNGs named by the annotations'
      ``file_name`` (segment id = R + 256 G + 256^2 B; things ``labelId * 1000
      + k``, stuff ``labelId``).
    * Labels: ``metainfo['classes']`` (= ``thing_classes + stuff_classes``) are
      matched to the JSON's categories *by name*, so label ``i`` is
      ``classes[i]`` whatever the (sparse) category ids are (Cityscapes
      labelIds, or trainIds for ``*_trainId.json``). Segments of categories not
      in ``classes`` become void. Default: the 19 evaluated Cityscapes classes
      (8 things, 11 stuff); override with ``metainfo=dict(classes=...,
      thing_classes=..., stuff_classes=..., palette=...)``.
    * Each ``data_list`` item has the keys of ``CocoPanopticDataset``:
      ``img_path``, ``img_id`` (the Cityscapes id string), ``seg_map_path``,
      ``height``, ``width``, ``instances`` (non-crowd things: ``bbox`` x1y1x2y2,
      ``bbox_label``, ``ignore_flag``) and ``segments_info`` (``id``,
      ``category`` = label, ``is_thing``; crowd things have ``is_thing=False``).
    * ``filter_cfg=dict(filter_empty_gt=True, min_size=32)`` works as in
      ``CocoPanopticDataset`` (ignored in ``test_mode``).
    """

    METAINFO = CITYSCAPES_PANOPTIC_METAINFO

    def __init__(self,
                 ann_file: str = '',
                 data_prefix: Optional[Dict[str, str]] = None,
                 **kwargs: Any) -> None:
        prefix = dict(default_data_prefix(ann_file) or {})
        prefix.update(data_prefix or {})
        if not prefix.get('img'):
            raise UserError(
                f"CityscapesPanopticDataset: no data_prefix.img for ann_file "
                f"'{ann_file}'. Give data_prefix=dict(img='leftImg8bit/<split>/', "
                "seg='gtFine/cityscapes_panoptic_<split>/') (relative to "
                'data_root), or name the JSON cityscapes_panoptic_<split>.json '
                f'as {CONVERTER_COMMAND} does.')
        super().__init__(ann_file=ann_file, data_prefix=prefix, **kwargs)

    # ------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Parse ``ann_file`` into ``CocoPanopticDataset``-style items.

        Reads the JSON directly, in linear time: mmdet's ``COCOPanoptic`` index
        groups segments by segment id, and Cityscapes' stuff segment ids repeat
        in every image (id = labelId), which makes its loading quadratic.
        """
        self._check_metainfo()
        if not osp.isfile(self.ann_file) and '://' not in self.ann_file:
            raise UserError(
                f"annotation file '{self.ann_file}' not found. Create it from the "
                f'Cityscapes download with: {CONVERTER_COMMAND}')
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            coco = load(local_path)
        missing = {'images', 'categories'} - set(coco)
        if not isinstance(coco, dict) or missing:
            raise UserError(
                f"'{self.ann_file}' is not a COCO-panoptic JSON (no "
                f"{sorted(missing)}); create it with: {CONVERTER_COMMAND}")

        self._set_categories(coco['categories'])
        anns = {ann['image_id']: ann for ann in coco.get('annotations', [])}
        data_list = []
        for img in coco['images']:
            raw_img_info = dict(img, img_id=img['id'])
            data_list.append(
                self.parse_data_info(
                    dict(raw_img_info=raw_img_info,
                         raw_ann_info=anns.get(img['id']))))
        self.cat_img_map = self._category_images(data_list)
        self._check_first_files(data_list)
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """One image of the JSON -> one ``data_list`` item.

        Args:
            raw_data_info: ``raw_img_info`` (the JSON ``images[]`` entry plus
                ``img_id``) and ``raw_ann_info`` (its ``annotations[]`` entry,
                ``None`` for an image without one).

        Returns:
            The item, keys as in :class:`CocoPanopticDataset` (class docstring).
        """
        img_info = raw_data_info['raw_img_info']
        ann = raw_data_info['raw_ann_info']
        image_id = img_info['img_id']
        seg_prefix = self.data_prefix.get('seg')
        data_info = dict(
            img_path=cityscapes_image_path(self.data_prefix['img'], image_id),
            img_id=image_id,
            seg_map_path=(osp.join(seg_prefix, ann['file_name'])
                          if seg_prefix and ann else None),
            height=img_info['height'],
            width=img_info['width'])
        if self.return_classes:  # open-vocabulary models (as in mmdet)
            data_info['text'] = self.metainfo['thing_classes']
            data_info['stuff_text'] = self.metainfo['stuff_classes']
            data_info['custom_entities'] = True

        instances, segments_info = [], []
        for seg in (ann or {}).get('segments_info', []):
            label = self.cat2label.get(seg['category_id'])
            if label is None:  # category not among ``classes``: void
                continue
            x1, y1, w, h = seg['bbox']
            if seg['area'] <= 0 or w < 1 or h < 1:
                continue
            is_thing = self._cat_isthing[seg['category_id']]
            if is_thing and seg.get('iscrowd', 0):
                # mmdet's convention: a crowd region is semantic-only
                is_thing = False
            elif is_thing:
                instances.append(
                    dict(bbox=[x1, y1, x1 + w, y1 + h], bbox_label=label,
                         ignore_flag=0))
            segments_info.append(
                dict(id=seg['id'], category=label, is_thing=is_thing))
        data_info['instances'] = instances
        data_info['segments_info'] = segments_info
        return data_info

    # ------------------------------------------------------------------
    # Checks and bookkeeping
    # ------------------------------------------------------------------
    def _check_metainfo(self) -> None:
        """``classes`` must be ``thing_classes + stuff_classes`` (mmdet's panoptic
        convention), with a colour per class."""
        meta = self.metainfo
        things = tuple(meta.get('thing_classes') or ())
        stuff = tuple(meta.get('stuff_classes') or ())
        classes = tuple(meta.get('classes') or ())
        if classes != things + stuff:
            raise UserError(
                f'{type(self).__name__}: metainfo classes {list(classes)} must be '
                f'thing_classes {list(things)} + stuff_classes {list(stuff)}, '
                'in that order (labels < num_things are things). Give all three '
                'in metainfo=dict(classes=..., thing_classes=..., stuff_classes=...)')
        palette = meta.get('palette')
        if palette is not None and len(palette) < len(classes):
            raise UserError(
                f'{type(self).__name__}: metainfo palette has {len(palette)} '
                f'colours for {len(classes)} classes; add palette=[(r, g, b), ...] '
                'with one colour per class to metainfo')

    def _set_categories(self, categories: List[dict]) -> None:
        """Map category ids to labels by class name (``self.cat_ids[label]``)."""
        meta = self.metainfo
        self.cat_ids = category_ids_by_name(
            meta['classes'], categories, f"'{self.ann_file}'",
            fix='Set metainfo classes / thing_classes / stuff_classes to category '
                'names of the JSON',
            thing_classes=meta['thing_classes'])
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self._cat_isthing = {cat['id']: bool(cat.get('isthing')) for cat in categories}

    def _category_images(self, data_list: List[dict]) -> Dict[int, List[str]]:
        """Category id -> ids of the images with a segment of it (mmdet's
        ``cat_img_map``)."""
        cat_img_map = defaultdict(list)
        for item in data_list:
            labels = {seg['category'] for seg in item['segments_info']}
            for label in sorted(labels):
                cat_img_map[self.cat_ids[label]].append(item['img_id'])
        return dict(cat_img_map)

    def _check_first_files(self, data_list: List[dict]) -> None:
        """Fail now, not in a dataloader worker, when the prefixes are wrong."""
        if not data_list:
            return
        item = data_list[0]
        checks = [('image', item['img_path'], 'img', 'leftImg8bit/<split>/')]
        if item['seg_map_path']:
            checks.append(('panoptic PNG', item['seg_map_path'], 'seg',
                           'gtFine/cityscapes_panoptic_<split>/'))
        for what, path, key, example in checks:
            if '://' in path or osp.isfile(path):
                continue
            raise UserError(
                f"{what} '{path}' (of image id '{item['img_id']}' in "
                f"'{self.ann_file}') not found. Check data_root and "
                f"data_prefix.{key} (expected like '{example}', relative to "
                'data_root)')


@DATASETS.register_module()
class DemoCityscapesPanopticDataset(_GeneratesDemoData, CityscapesPanopticDataset):
    """Cityscapes-layout panoptic data of the demo scenes (generated on first use).

    Things circle / triangle / square and stuff sky / grass / water, with the
    Cityscapes-style label ids of :mod:`mmext.datasets.demo_data`::

        dict(type='DemoCityscapesPanopticDataset',
             ann_file='gtFine/cityscapes_panoptic_val.json')

    Args:
        demo_root: where the whole demo set lives (generated there by
            :func:`ensure_demo_data`); default ``data/demo``.
        data_root: the Cityscapes part of it; default ``{demo_root}/cityscapes``.
        demo_data: keyword arguments for :func:`ensure_demo_data` (e.g. ``seed``).
        **kwargs: as for :class:`CityscapesPanopticDataset`.
    """

    METAINFO = PANOPTIC_METAINFO

    def __init__(self,
                 *args: Any,
                 demo_root: str = DEMO_ROOT,
                 data_root: Optional[str] = None,
                 demo_data: Optional[dict] = None,
                 **kwargs: Any) -> None:
        # The demo set is generated at its root, but read from its cityscapes/
        # sub-folder, so the mixin's __init__ (which uses one path for both) is
        # skipped; the mixin still marks the class as ``generates_own_data``.
        ensure_demo_data(demo_root, **(demo_data or {}))
        if data_root is None:
            data_root = osp.join(demo_root, 'cityscapes')
        super(_GeneratesDemoData, self).__init__(
            *args, data_root=data_root, **kwargs)
