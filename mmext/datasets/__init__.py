"""Datasets: the embedded demo data (generator + self-generating dataset types),
Cityscapes panoptic, and the LaU authors' blur augmentation (``PILGaussianBlur``)."""
from .cityscapes_panoptic import (CityscapesPanopticDataset,
                                  DemoCityscapesPanopticDataset)
from .demo_datasets import (DemoCocoDataset, DemoCocoPanopticDataset,
                            DemoSegDataset)
from .gaussian_blur import PILGaussianBlur

__all__ = [
    'CityscapesPanopticDataset', 'DemoCityscapesPanopticDataset',
    'DemoCocoDataset', 'DemoCocoPanopticDataset', 'DemoSegDataset', 'PILGaussianBlur'
]
