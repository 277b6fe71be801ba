"""Problems a network is trained on: what a batch is, the loss, the metrics, the data (images now;
language modelling next)."""

from nasp.problems.image import ImageClassification

__all__ = ["ImageClassification"]
