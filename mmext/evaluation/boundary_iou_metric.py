"""Boundary mIoU for semantic segmentation: mIoU restricted to bands around the
ground-truth boundaries (where a better upsampler such as LaU should help).

Definitions (one image, label map ``gt`` (H, W), prediction ``pred`` (H, W)):

* a **boundary pixel** is a pixel whose label differs from one of its 4 neighbours
  (the ignore label counts as a label here, so the edge of an ignored region is a
  boundary; ignored pixels themselves are never scored);
* the **band of width d** is every pixel at Chebyshev distance < d from a boundary
  pixel (a (2d-1) x (2d-1) square dilation; d=1 is the boundary pixels themselves;
  a straight edge between two regions gives a band 2d pixels wide);
* inside the band (and outside ignored pixels) intersection and union per class are
  accumulated over the dataset as in mmseg's ``IoUMetric``; the result is the mean
  over the classes with a non-empty union, in percent.

Registered in mmseg's ``METRICS`` as ``BoundaryIoUMetric``; reports ``bIoU@{d}px``
for every width, next to ``IoUMetric``'s ``mIoU``::

    val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                     dict(type='BoundaryIoUMetric', widths=(3, 8))]
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS


def boundary_band(label: torch.Tensor, width: int) -> torch.Tensor:
    """Bool (H, W): pixels at Chebyshev distance < ``width`` from a label change."""
    edge = torch.zeros_like(label, dtype=torch.bool)
    vertical = label[:-1, :] != label[1:, :]
    horizontal = label[:, :-1] != label[:, 1:]
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    if width == 1:
        return edge
    band = F.max_pool2d(edge[None, None].float(), kernel_size=2 * width - 1, stride=1,
                        padding=width - 1)
    return band[0, 0] > 0


def band_intersect_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                         width: int, ignore_index: int) -> torch.Tensor:
    """(2, num_classes) int64: per-class intersection and union inside the band."""
    keep = boundary_band(label, width) & (label != ignore_index)
    p, g = pred[keep].long(), label[keep].long()
    inter = torch.bincount(g[p == g], minlength=num_classes)[:num_classes]
    area_p = torch.bincount(p[(p >= 0) & (p < num_classes)],
                            minlength=num_classes)[:num_classes]
    area_g = torch.bincount(g, minlength=num_classes)[:num_classes]
    return torch.stack([inter, area_p + area_g - inter]).cpu()


@METRICS.register_module()
class BoundaryIoUMetric(BaseMetric):
    """mIoU inside bands of the given widths around ground-truth boundaries.

    Args:
        widths: band widths d in pixels (see the module docstring), e.g. (3, 8).
        ignore_index: the label that is never scored.
        collect_device, prefix: as for every mmengine metric.
    """

    def __init__(self, widths: Sequence[int] = (3, 8), ignore_index: int = 255,
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        widths = tuple(widths)
        if not widths or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                             for d in widths):
            raise ValueError(f'BoundaryIoUMetric: widths must be positive integers '
                             f'(pixels), e.g. (3, 8); got {widths!r}')
        self.widths = widths
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            self.results.append(torch.stack([
                band_intersect_union(pred, label, num_classes, d, self.ignore_index)
                for d in self.widths]))  # (len(widths), 2, num_classes)

    def compute_metrics(self, results: List[torch.Tensor]) -> Dict[str, float]:
        total = torch.stack(results).sum(0).double()  # (len(widths), 2, K)
        metrics: Dict[str, float] = OrderedDict()
        for i, d in enumerate(self.widths):
            inter, union = total[i]
            iou = (inter / union).numpy()  # NaN where the union is empty
            metrics[f'bIoU@{d}px'] = float(np.round(np.nanmean(iou) * 100, 2)) \
                if np.isfinite(iou).any() else float('nan')
        return metrics
