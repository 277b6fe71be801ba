"""Datasets and text corpora (registries) and reproducible batches."""

from nasp.data.batches import Batches, split_indices
from nasp.data.corpus import CORPORA, Corpus, TextBatches, batchify, list_corpora, load_corpus, register_corpus
from nasp.data.datasets import DATASETS, ImageSet, list_datasets, load_dataset, register_dataset

__all__ = ["CORPORA", "DATASETS", "Batches", "Corpus", "ImageSet", "TextBatches", "batchify", "list_corpora", "list_datasets",
           "load_corpus", "load_dataset", "register_corpus", "register_dataset", "split_indices"]
