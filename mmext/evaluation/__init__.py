"""mmext.evaluation (see README)."""
from .cityscapes_panoptic_metric import CityscapesPanopticMetric
from .boundary_iou_metric import BoundaryIoUMetric  # noqa: F401

__all__ = ['CityscapesPanopticMetric']
