"""Training engine: Trainer (explicit loop + hooks), checkpoints, early stopping, torchrun."""

from modernvision.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from modernvision.engine.hooks import EarlyStopping, Hook, PreciseBN
from modernvision.engine.tasks import ClassificationTask, split_parameters
from modernvision.engine.trainer import Trainer

__all__ = [
    "CheckpointError",
    "ClassificationTask",
    "EarlyStopping",
    "Hook",
    "PreciseBN",
    "Trainer",
    "atomic_save",
    "load_checkpoint",
    "split_parameters",
]
