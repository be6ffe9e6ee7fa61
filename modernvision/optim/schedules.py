"""Learning-rate schedules: step decay, cosine annealing, linear warm-up, and their sequence.

Papers:
    Step decay: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional
    Neural Networks", NeurIPS 2012 (divide the lr by 10 on plateaus); He et al., "Deep Residual
    Learning for Image Recognition", 2015, arXiv:1512.03385 (divide by 10 at fixed epochs).
    Cosine annealing: Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts", 2016, arXiv:1608.03983, Eq. 5, used without restarts.
    Linear warm-up: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
    2017, arXiv:1706.02677, Sec. 2.2 (gradual warm-up).

Every schedule here is a ``torch.optim.lr_scheduler.LRScheduler``: it works with any optimizer,
scales every parameter group from its own initial lr (so a backbone group at a tenth of the head's
lr stays at a tenth), and has ``step``, ``get_last_lr``, ``state_dict`` and ``load_state_dict``.
Unlike torch's schedulers, which update ``group["lr"]`` recursively, each one computes the lr in
closed form from the step count (``lr_at``); this makes them exact, resumable from a state dict, and
composable: :class:`SequentialSchedule` runs one schedule, then the next from its own step 0, as
``torch.optim.lr_scheduler.SequentialLR`` does.

Departures: :class:`CosineAnnealing` holds ``eta_min`` after ``T_max`` steps (torch's continues
the cosine back up); :class:`LinearWarmup` accepts ``start_factor=0`` (torch's LinearLR needs > 0).
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class ClosedFormSchedule(LRScheduler, metaclass=ABCMeta):
    """Base class: the lr of each group at step ``t`` is ``lr_at(initial_lr, t)``.

    Subclasses implement :meth:`lr_at`. ``t`` is ``last_epoch``: 0 after construction, +1 per
    :meth:`step` (whether a step is an iteration or an epoch is up to the caller).
    """

    @abstractmethod
    def lr_at(self, base_lr: float, step: int) -> float:
        """The learning rate at ``step`` for a group whose initial lr is ``base_lr``."""

    def get_lr(self) -> list[float]:
        """Learning rates for the current ``last_epoch``, one per parameter group."""
        return [self.lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        # torch's step(epoch) (deprecated) looks for this name.
        return self.get_lr()


class Constant(ClosedFormSchedule):
    """Keep every group at its initial lr (useful as the second half of a warm-up sequence)."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, step: int) -> float:
        """``base_lr`` at every step."""
        return base_lr


class StepDecay(ClosedFormSchedule):
    """Multiply the lr by ``gamma`` every ``step_size`` steps: ``lr_t = lr_0 * gamma^(t // s)``.

    Equals ``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)``.

    Args:
        optimizer: the optimizer whose groups are scheduled.
        step_size: number of steps between decays (> 0).
        gamma: multiplicative decay factor (> 0).
        last_epoch: index of the last step taken, -1 for a fresh schedule.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, step: int) -> float:
        """``base_lr * gamma ** (step // step_size)``."""
        return base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealing(ClosedFormSchedule):
    """Half a cosine from the initial lr down to ``eta_min`` over ``T_max`` steps (SGDR, Eq. 5).

    ``lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2`` for ``t <= T_max``, and
    ``eta_min`` afterwards. Equals ``torch.optim.lr_scheduler.CosineAnnealingLR`` for
    ``t <= T_max``.

    Args:
        optimizer: the optimizer whose groups are scheduled.
        T_max: number of steps from the initial lr to ``eta_min`` (> 0).
        eta_min: final learning rate.
        last_epoch: index of the last step taken, -1 for a fresh schedule.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if int(T_max) != T_max or T_max <= 0:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        if eta_min < 0:
            raise ValueError(f"eta_min must be >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, step: int) -> float:
        """The cosine-annealed lr at ``step`` (``eta_min`` once ``step >= T_max``)."""
        progress = min(step, self.T_max) / self.T_max
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmup(ClosedFormSchedule):
    """Ramp the lr linearly from ``start_factor * lr_0`` to ``end_factor * lr_0``, then hold it.

    ``lr_t = lr_0 * (s + (e - s) * min(t, warmup_steps) / warmup_steps)``. Equals
    ``torch.optim.lr_scheduler.LinearLR(optimizer, s, e, total_iters=warmup_steps)``.

    Args:
        optimizer: the optimizer whose groups are scheduled.
        warmup_steps: number of steps of the ramp (> 0).
        start_factor: fraction of the initial lr at step 0, in ``[0, 1]``.
        end_factor: fraction of the initial lr at the end of the ramp, in ``[0, 1]``.
        last_epoch: index of the last step taken, -1 for a fresh schedule.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 0.001,
                 end_factor: float = 1.0, last_epoch: int = -1) -> None:
        if int(warmup_steps) != warmup_steps or warmup_steps <= 0:
            raise ValueError(f"warmup_steps must be a positive integer, got {warmup_steps!r}")
        for name, value in (("start_factor", start_factor), ("end_factor", end_factor)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        self.warmup_steps = int(warmup_steps)
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, step: int) -> float:
        """The linearly interpolated lr at ``step``."""
        progress = min(step, self.warmup_steps) / self.warmup_steps
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialSchedule(ClosedFormSchedule):
    """Run ``schedules[0]`` until ``milestones[0]``, then ``schedules[1]`` from its step 0, ...

    Equals ``torch.optim.lr_scheduler.SequentialLR`` with the corresponding torch schedulers:
    the i-th schedule sees step ``t - milestones[i - 1]``. Warm-up then cosine over ``T`` steps
    with ``W`` warm-up steps is
    ``SequentialSchedule(opt, [LinearWarmup(opt, W), CosineAnnealing(opt, T - W)], [W])``.

    Args:
        optimizer: the optimizer shared by every schedule.
        schedules: closed-form schedules built on ``optimizer``.
        milestones: increasing steps at which the next schedule takes over
            (``len(schedules) - 1`` of them).
        last_epoch: index of the last step taken, -1 for a fresh schedule.
    """

    def __init__(self, optimizer: Optimizer, schedules: Sequence[ClosedFormSchedule],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        if len(schedules) == 0:
            raise ValueError("schedules must hold at least one schedule, got none")
        for i, schedule in enumerate(schedules):
            if not isinstance(schedule, ClosedFormSchedule):
                raise TypeError(f"schedules[{i}] must be a ClosedFormSchedule from "
                                f"modernvision.optim, got {type(schedule).__name__}")
            if schedule.optimizer is not optimizer:
                raise ValueError(f"schedules[{i}] is attached to a different optimizer")
        if len(milestones) != len(schedules) - 1:
            raise ValueError(f"milestones must have len(schedules) - 1 = {len(schedules) - 1} "
                             f"entries, got {len(milestones)}")
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or any(
                m <= 0 for m in milestones):
            raise ValueError(f"milestones must be positive and increasing, got {list(milestones)}")
        self._schedules = list(schedules)
        self.milestones = [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, step: int) -> float:
        """The lr of the schedule active at ``step``, at its own step count."""
        index = bisect_right(self.milestones, step)
        start = self.milestones[index - 1] if index > 0 else 0
        return self._schedules[index].lr_at(base_lr, step - start)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, with the inner schedules' states nested (no optimizer)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedules")}
        state["_schedules"] = [s.state_dict() for s in self._schedules]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        state = dict(state_dict)
        inner = state.pop("_schedules")
        self.__dict__.update(state)
        for schedule, schedule_state in zip(self._schedules, inner, strict=True):
            schedule.load_state_dict(schedule_state)
