"""Training GANs with the fused kernels: data, models, metrics, plots, checkpoints, the trainer
and the `gankernels train | sample | evaluate` command line."""

from .data import BUILTIN_SETS, TOY_SETS, DataSet, load_data
from .metrics import evaluate_samples, mmd2, modes_and_quality, precision_recall
from .trainer import TrainConfig, Trainer, TrainingDiverged, TrainResult, train

__all__ = [
    "BUILTIN_SETS",
    "TOY_SETS",
    "DataSet",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "evaluate_samples",
    "load_data",
    "mmd2",
    "modes_and_quality",
    "precision_recall",
    "train",
]
