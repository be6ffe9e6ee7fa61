"""The jobs behind ``modernvision train / eval / predict``: one per task family.

``train(cfg)`` trains a new run, ``resume(run_dir)`` continues or extends one, ``load_run``,
``evaluate_run`` and ``predict_run`` use a trained one; the model's registry task picks the job
(:mod:`.classification`, ...). Configs live in the torch-free :mod:`.configs`. Names are
imported on first use, so the CLI can read the configs without importing torch.
"""

from __future__ import annotations

import importlib
import pkgutil

_EXPORTS = {
    "DataParts": "base", "Job": "base", "LoadedRun": "base", "evaluate_run": "base",
    "get_job": "base", "job_for_model": "base", "load_run": "base", "predict_run": "base",
    "register_job": "base", "resume": "base", "train": "base",
    "ClassificationConfig": "configs", "RunConfig": "configs", "parse_data_spec": "configs",
}

__all__ = sorted(_EXPORTS)


def load_jobs() -> None:
    """Import every job module (each registers its job)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "configs") and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
