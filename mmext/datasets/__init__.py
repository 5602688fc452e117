"""Datasets: the embedded demo data (generator + self-generating dataset types)."""
from .cityscapes_panoptic import (CityscapesPanopticDataset,
                                  DemoCityscapesPanopticDataset)
from .demo_datasets import (DemoCocoDataset, DemoCocoPanopticDataset,
                            DemoSegDataset)

__all__ = [
    'CityscapesPanopticDataset', 'DemoCityscapesPanopticDataset',
    'DemoCocoDataset', 'DemoCocoPanopticDataset', 'DemoSegDataset'
]
