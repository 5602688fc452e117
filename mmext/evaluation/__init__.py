"""mmext.evaluation: the Cityscapes panoptic metric (docs/cityscapes_panoptic.md) and
the boundary-IoU metric (docs/lau_seg.md)."""
from .cityscapes_panoptic_metric import CityscapesPanopticMetric
from .boundary_iou_metric import BoundaryIoUMetric  # noqa: F401

__all__ = ['CityscapesPanopticMetric']
