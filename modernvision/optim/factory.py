"""Build an optimizer or an lr schedule by name (what the engine and the CLI call).

Optimizers: ``sgd`` (plain), ``momentum`` (heavy ball), ``nesterov``, ``rmsprop``, ``adam``,
``adamw`` — the hand-written classes of :mod:`modernvision.optim`. Schedules: ``none``, ``step``,
``cosine``, each optionally after a linear warm-up. Schedules built here are stepped once per
*iteration* (call ``scheduler.step()`` after every ``optimizer.step()``); epochs are converted to
iterations with ``steps_per_epoch``.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from modernvision._errors import unknown_name
from modernvision.optim.adam import Adam, AdamW
from modernvision.optim.rmsprop import RMSProp
from modernvision.optim.schedules import (
    ClosedFormSchedule,
    Constant,
    CosineAnnealing,
    LinearWarmup,
    SequentialSchedule,
    StepDecay,
)
from modernvision.optim.sgd import SGD, ParamsT

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine")


def build_optimizer(
    name: str,
    params: ParamsT,
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    **kwargs: Any,
) -> Optimizer:
    """Build one of the hand-written optimizers by name.

    Args:
        name: ``sgd`` (no momentum), ``momentum`` (SGD with heavy-ball momentum), ``nesterov``
            (SGD with Nesterov momentum), ``rmsprop`` (RMSProp with ``momentum``; pass
            ``momentum=0`` for the plain form), ``adam`` or ``adamw``.
        params: parameters or parameter-group dicts (a group may set its own ``lr``, e.g. a lower
            backbone lr).
        lr: learning rate.
        weight_decay: L2 weight decay (decoupled for ``adamw``, added to the gradient otherwise).
        momentum: momentum factor for ``momentum``, ``nesterov`` and ``rmsprop``; not used by
            ``sgd``, ``adam`` and ``adamw``.
        **kwargs: further constructor arguments of the chosen class (``betas``, ``eps``,
            ``alpha``, ``centered``, ``amsgrad``, ``dampening``, ``maximize``).

    Returns:
        The optimizer.

    Raises:
        KeyError: unknown ``name`` (the message lists the known ones).
    """
    key = name.lower()
    if key == "sgd":
        return SGD(params, lr, momentum=0.0, weight_decay=weight_decay, **kwargs)
    if key == "momentum":
        return SGD(params, lr, momentum=momentum, weight_decay=weight_decay, **kwargs)
    if key == "nesterov":
        return SGD(params, lr, momentum=momentum, weight_decay=weight_decay, nesterov=True,
                   **kwargs)
    if key == "rmsprop":
        return RMSProp(params, lr, momentum=momentum, weight_decay=weight_decay, **kwargs)
    if key == "adam":
        return Adam(params, lr, weight_decay=weight_decay, **kwargs)
    if key == "adamw":
        return AdamW(params, lr, weight_decay=weight_decay, **kwargs)
    raise unknown_name("optimizer", name, OPTIMIZERS)


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.001,
    step_size: int = 30,
    gamma: float = 0.1,
    eta_min: float = 0.0,
) -> ClosedFormSchedule:
    """Build an lr schedule that is stepped once per iteration.

    The warm-up (if any) ramps linearly from ``warmup_start_factor * lr`` over the first
    ``warmup_epochs`` epochs; the main schedule then starts from the full lr at its own step 0
    (as ``torch.optim.lr_scheduler.SequentialLR`` does), so ``cosine`` reaches ``eta_min`` at the
    end of training and ``step`` counts its ``step_size`` epochs from the end of the warm-up.

    Args:
        name: ``none`` (constant lr), ``step`` (multiply by ``gamma`` every ``step_size`` epochs)
            or ``cosine`` (cosine annealing to ``eta_min`` over the epochs after the warm-up).
        optimizer: the optimizer to schedule (every parameter group scales from its own lr).
        epochs: total number of training epochs.
        steps_per_epoch: optimizer steps per epoch.
        warmup_epochs: length of the linear warm-up in epochs (may be fractional; 0 disables it).
        warmup_start_factor: fraction of the lr at the first warm-up step.
        step_size: epochs between decays for ``step``.
        gamma: decay factor for ``step``.
        eta_min: final lr for ``cosine``.

    Returns:
        The schedule (a ``torch.optim.lr_scheduler.LRScheduler``).

    Raises:
        KeyError: unknown ``name``.
        ValueError: non-positive ``epochs``/``steps_per_epoch``, or a warm-up as long as training.
    """
    key = name.lower()
    if key not in SCHEDULES:
        raise unknown_name("lr schedule", name, SCHEDULES)
    for arg, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs!r}")
    total_steps = int(epochs) * int(steps_per_epoch)
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_epochs ({warmup_epochs}) must be shorter than epochs ({epochs})")

    main: ClosedFormSchedule
    if key == "none":
        main = Constant(optimizer)
    elif key == "step":
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"step_size must be a positive number of epochs, got {step_size!r}")
        main = StepDecay(optimizer, step_size=step_size * steps_per_epoch, gamma=gamma)
    else:
        main = CosineAnnealing(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    if warmup_steps == 0:
        return main
    warmup = LinearWarmup(optimizer, warmup_steps, start_factor=warmup_start_factor)
    return SequentialSchedule(optimizer, [warmup, main], milestones=[warmup_steps])
