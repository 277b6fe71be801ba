"""Datasets (registry) and reproducible batches."""

from nasp.data.batches import Batches, split_indices
from nasp.data.datasets import DATASETS, ImageSet, list_datasets, load_dataset, register_dataset

__all__ = ["DATASETS", "Batches", "ImageSet", "list_datasets", "load_dataset", "register_dataset", "split_indices"]
