"""AutoDL challenge datasets and scoring without TensorFlow.

``autodl.dataset`` reads the TFRecord/SequenceExample format, ``autodl.writer`` writes it,
``autodl.metrics`` scores predictions as the challenge does (NAUC, ALC, balanced accuracy).
``zcproxies`` never imports this package.
"""

from autodl.dataset import (
    AutoDLDataset,
    AutoDLMetadata,
    Example,
    iterate_batches,
    load_dataset,
)
from autodl.errors import FormatError, ScoringError
from autodl.metrics import LearningCurve, alc, balanced_accuracy, nauc
from autodl.writer import format_dataset, format_image_folder

__all__ = [
    "AutoDLDataset",
    "AutoDLMetadata",
    "Example",
    "FormatError",
    "LearningCurve",
    "ScoringError",
    "alc",
    "balanced_accuracy",
    "format_dataset",
    "format_image_folder",
    "iterate_batches",
    "load_dataset",
    "nauc",
]
