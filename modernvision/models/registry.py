"""One flat registry of model builders.

A builder is a plain function ``name(*, num_classes=1000, **kwargs) -> nn.Module``; its
registry key is its function name. Registering a name twice raises. A builder may declare
the torchvision constructor it is weight-compatible with and a converter that maps a
torchvision state dict onto ours (``convert_torchvision_state_dict``), and the task it solves
(one of :data:`TASKS`), which decides how ``modernvision train / eval / predict`` drive it.

Every sub-package of :mod:`modernvision.models` (classification, detection, segmentation,
sequence, metric, ...) is imported on first use, and each imports its own modules, so a new
model file registers itself without touching this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from modernvision._errors import InvalidArgumentError, unknown_name

StateDict = dict[str, torch.Tensor]
Converter = Callable[[StateDict], StateDict]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    torchvision: str | None = None  # name of the torchvision.models constructor
    converter: Converter | None = None  # torchvision state dict -> ours (identity if None)
    task: str = "classification"


#: What a model is for; ``modernvision models --task T`` filters on it.
TASKS = ("classification", "detection", "instance", "keypoint", "semantic", "panoptic",
         "embedding", "sequence")

_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    torchvision: str | None = None,
    converter: Converter | None = None,
    task: str = "classification",
):
    """Register a builder under its function name. Usable bare or with keywords."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if task not in TASKS:
            raise ValueError(f"model {name!r}: task must be one of {TASKS}, got {task!r}")
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, builder, torchvision, converter, task)
        return builder

    return wrap(fn) if fn is not None else wrap


_LOADED = False


def _load_all() -> None:
    # Importing the model packages registers their builders.
    global _LOADED
    if _LOADED:
        return
    import importlib
    import pkgutil

    import modernvision.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    _LOADED = True


def get_entry(name: str) -> ModelEntry:
    _load_all()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise unknown_name("model", str(name), _REGISTRY, list_command="modernvision models")
    return _REGISTRY[name]


def list_models(task: str | None = None) -> list[str]:
    """Sorted names of every registered model (optionally of one task)."""
    _load_all()
    if task is not None and task not in TASKS:
        raise unknown_name("task", task, TASKS)
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def convert_torchvision_state_dict(name: str, state_dict: StateDict) -> StateDict:
    """A state dict for our model ``name`` built from torchvision's matching model's."""
    entry = get_entry(name)
    if entry.torchvision is None:
        raise ValueError(f"model {name!r} has no torchvision counterpart to convert from")
    sd = dict(state_dict)
    return entry.converter(sd) if entry.converter is not None else sd


def create(
    name: str,
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: registry key (see ``list_models()``).
        num_classes: size of the classifier output; ``None`` keeps the builder's default
            (1000, ImageNet's, for the zoo; 10 for ``compact_cnn``). ``0`` builds a headless
            classifier: no classifier parameters at all, ``forward`` returns the pooled
            ``(B, model.num_features)`` features and ``forward_stages`` works as usual
            (detectors count the background in ``num_classes`` and need at least 2).
        weights: ``None`` (random init), ``"torchvision"`` (torchvision's default pretrained
            weights, converted; needs them cached or downloadable) or a path to a state dict
            saved from the matching torchvision model.
        **kwargs: passed on to the builder (e.g. ``small_input=True``).
    """
    entry = get_entry(name)
    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise InvalidArgumentError(
                f"num_classes must be an int >= 0 (0: a headless classifier), got {num_classes!r}")
        kwargs["num_classes"] = num_classes
    model = entry.builder(**kwargs)
    if weights is not None:
        from modernvision.models.pretrained import load_torchvision_weights

        load_torchvision_weights(model, name, weights)
    return model
