"""Training engine: Trainer (explicit loop + hooks), evaluators, checkpoints, early stopping,
torchrun, and the task jobs behind ``modernvision train / eval / predict``.

Names are imported on first use, so importing a torch-free part (``engine.jobs.configs``, which
``modernvision train --help`` reads) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CheckpointError": "modernvision.engine.checkpoint",
    "atomic_save": "modernvision.engine.checkpoint",
    "load_checkpoint": "modernvision.engine.checkpoint",
    "ClassificationEvaluator": "modernvision.engine.evaluation",
    "Evaluator": "modernvision.engine.evaluation",
    "EarlyStopping": "modernvision.engine.hooks",
    "Hook": "modernvision.engine.hooks",
    "PreciseBN": "modernvision.engine.hooks",
    "ClassificationTask": "modernvision.engine.tasks",
    "split_parameters": "modernvision.engine.tasks",
    "Trainer": "modernvision.engine.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
