"""mmdet / mmseg dataset types over the embedded demo data.

They behave exactly like ``CocoDataset`` / ``BaseSegDataset`` but first make sure the
demo files exist under ``data_root`` (generated deterministically on first use, see
:mod:`mmext.datasets.demo_data`), so demo configs work on a fresh clone.
"""
from typing import Any, Optional

from mmdet.datasets import CocoDataset, CocoPanopticDataset
from mmdet.registry import DATASETS as DET_DATASETS
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS as SEG_DATASETS

from .demo_data import (DEMO_ROOT, DETECTION_METAINFO, PANOPTIC_METAINFO,
                        SEGMENTATION_METAINFO, ensure_demo_data)


class _GeneratesDemoData:
    """Mixin: generate the demo data under ``data_root`` before loading it."""

    generates_own_data = True  # lets tools' pre-flight skip the path check

    def __init__(self, *args: Any, data_root: str = DEMO_ROOT,
                 demo_data: Optional[dict] = None, **kwargs: Any) -> None:
        ensure_demo_data(data_root, **(demo_data or {}))
        super().__init__(*args, data_root=data_root, **kwargs)


@DET_DATASETS.register_module()
class DemoCocoDataset(_GeneratesDemoData, CocoDataset):
    """COCO-format detection / instance data of the demo scenes (things only).

    ``demo_data``: keyword arguments for :func:`ensure_demo_data` (e.g. ``seed``).
    """

    METAINFO = DETECTION_METAINFO


@DET_DATASETS.register_module()
class DemoCocoPanopticDataset(_GeneratesDemoData, CocoPanopticDataset):
    """COCO-panoptic-format data of the demo scenes (3 thing + 3 stuff classes).

    ``ann_file='annotations/panoptic_{split}.json'``, ``data_prefix=dict(
    img='images/{split}/', seg='annotations/panoptic_{split}/')``.
    """

    METAINFO = PANOPTIC_METAINFO


@SEG_DATASETS.register_module()
class DemoSegDataset(_GeneratesDemoData, BaseSegDataset):
    """Semantic segmentation data of the demo scenes (stuff + things, 255 = ignore)."""

    METAINFO = SEGMENTATION_METAINFO

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(*args, **kwargs)
