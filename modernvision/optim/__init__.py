"""Hand-written optimizers (SGD, RMSProp, Adam, AdamW) and learning-rate schedules.

Each optimizer is a ``torch.optim.Optimizer`` that takes its torch counterpart's arguments and
follows the same trajectory; each schedule is a ``torch.optim.lr_scheduler.LRScheduler``.
"""

from modernvision.optim.adam import Adam, AdamW
from modernvision.optim.factory import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler
from modernvision.optim.rmsprop import RMSProp, RMSprop
from modernvision.optim.schedules import (
    ClosedFormSchedule,
    Constant,
    CosineAnnealing,
    LinearWarmup,
    SequentialSchedule,
    StepDecay,
)
from modernvision.optim.sgd import SGD

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "ClosedFormSchedule",
    "Constant",
    "CosineAnnealing",
    "LinearWarmup",
    "RMSProp",
    "RMSprop",
    "SequentialSchedule",
    "StepDecay",
    "build_optimizer",
    "build_scheduler",
]
