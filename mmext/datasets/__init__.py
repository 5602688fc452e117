"""Datasets: the embedded demo data (generator + self-generating dataset types)."""
from .demo_datasets import DemoCocoDataset, DemoSegDataset

__all__ = ['DemoCocoDataset', 'DemoSegDataset']
