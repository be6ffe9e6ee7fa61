"""Pretrained weights for transfer learning: torchvision's, converted to our models.

``create(name, weights="torchvision")`` loads torchvision's default weights for the matching
torchvision model (from the torch hub cache, or downloaded when the internet is reachable) and
converts them; ``weights=PATH`` loads a state dict saved from the torchvision model. With a
``num_classes`` other than the checkpoint's, the classifier layers whose shapes differ are left
freshly initialised (the usual transfer-learning head swap); a headless model (``num_classes=0``)
loads everything but the head.

``load_own_weights(model, RUN)`` (``train --init RUN``) starts a model from weights our own
``train`` produced for a related model, by parameter name and shape.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


def _torchvision_state_dict(tv_name: str) -> dict[str, torch.Tensor]:
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(tv_name).DEFAULT
    except (ValueError, KeyError) as exc:
        raise WeightsUnavailableError(f"torchvision has no pretrained weights for {tv_name!r}") \
            from exc
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # URLError, socket timeouts, HTTP errors
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsUnavailableError(
            f"torchvision's {weights} weights are not cached under {hub} and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Put the file {Path(weights.url).name} "
            f"there, or pass weights=PATH to a state dict saved from torchvision.models."
            f"{tv_name}()"
        ) from None


def load_torchvision_weights(model: nn.Module, name: str, weights: str | Path) -> nn.Module:
    """Load converted torchvision weights into our ``model`` (registry name ``name``)."""
    from modernvision.models.registry import convert_torchvision_state_dict, get_entry

    entry = get_entry(name)
    if entry.torchvision is None:
        raise ValueError(f"model {name!r} has no torchvision counterpart; weights= needs one")
    if str(weights) == "torchvision":
        sd = _torchvision_state_dict(entry.torchvision)
        if hasattr(model, "transform_input"):
            # torchvision's GoogLeNet/Inception v3 weights were trained on inputs in [-1, 1]:
            # with them it re-normalises ImageNet-normalised input (transform_input=True).
            model.transform_input = True
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist (weights= takes "
                                    "'torchvision' or a path to a torchvision state dict)")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd:
            sd = sd["state_dict"]
    converted = convert_torchvision_state_dict(name, sd)
    own = model.state_dict()
    if getattr(model, "num_classes", None) == 0:
        # A headless model (num_classes=0) has no classifier to load the head's weights into.
        converted = {k: v for k, v in converted.items() if k in own}
    skipped = [k for k, v in converted.items() if k in own and own[k].shape != v.shape]
    kept = {k: v for k, v in converted.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    if unexpected:
        raise ValueError(f"converted weights for {name!r} have keys our model lacks: "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    not_loaded = sorted(set(missing))
    if skipped or not_loaded:
        allowed = set(skipped)
        stray = [k for k in not_loaded if k not in allowed]
        if stray:
            raise ValueError(f"converted weights for {name!r} miss {len(stray)} of our "
                             f"parameters, e.g. {stray[:5]}")
    model.pretrained_skipped = skipped  # the re-initialised head, e.g. for a new num_classes
    return model


def load_own_weights(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Initialise ``model`` from weights our own ``train`` produced, by name and shape.

    The transfer between related models of this library (as detectron2 starts a Mask R-CNN
    from a detector's checkpoint): every tensor of ``source`` whose name and shape match one of
    ``model``'s is loaded; the rest of ``model`` (a new mask head, a semantic branch, a
    classifier for other classes) keeps its fresh initialisation.

    Args:
        model: the freshly built model.
        source: a run folder (its ``model_final.pt``, else ``checkpoints/last.pt``), a
            checkpoint written by the Trainer (``{"model": state_dict, ...}``), a packaged
            asset (``{"state_dict": ...}``) or a plain state dict file.

    Returns:
        ``{"loaded": [...], "shape_mismatch": [...], "not_in_source": [...]}``, parameter and
        buffer names.

    Raises:
        MissingFileError: ``source`` is neither a run folder with weights nor a file.
        BadFileError: the file is not a state dict, or no tensor of it fits ``model``.
    """
    from modernvision._errors import BadFileError, MissingFileError

    path = Path(source)
    if path.is_dir():
        candidates = (path / "model_final.pt", path / "checkpoints" / "last.pt")
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise MissingFileError(f"--init {path}: the run folder holds no weights "
                                   "(model_final.pt or checkpoints/last.pt)")
        path = found[0]
    elif not path.is_file():
        raise MissingFileError(f"--init {path}: no such run folder or weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for truncated/corrupt files
        raise BadFileError(f"--init {path}: cannot read it ({type(exc).__name__}: {exc})"
                           ) from exc
    state = None
    if isinstance(obj, dict):  # a Trainer checkpoint, a packaged asset, or a plain state dict
        state = obj.get("model", obj.get("state_dict", obj))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise BadFileError(f"--init {path}: expected a state dict, or a checkpoint with a "
                           "'model' or 'state_dict' entry")
    own = model.state_dict()
    loaded = sorted(k for k, v in state.items() if k in own and own[k].shape == v.shape)
    mismatch = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    if not loaded:
        raise BadFileError(f"--init {path}: none of its {len(state)} tensors matches a "
                           f"parameter of the model by name and shape")
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    return {"loaded": loaded, "shape_mismatch": mismatch,
            "not_in_source": sorted(set(own) - set(state))}
