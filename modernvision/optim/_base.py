"""What the hand-written optimizers share: checked parameter groups, the closure, and the walk
over the parameters that have a gradient. Each optimizer writes out only its update rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class HandWrittenOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose subclasses implement ``_check_group(group)`` (raise
    ``ValueError`` naming a bad hyper-parameter) and ``_update_group(group)`` (one step for the
    parameters of one group, see :func:`gradients`)."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        raise TypeError(f"{type(self).__name__} must implement _check_group")

    def _update_group(self, group: dict[str, Any]) -> None:
        raise TypeError(f"{type(self).__name__} must implement _update_group")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group after checking its hyper-parameters (see ``Optimizer``)."""
        self._check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one optimisation step; ``closure`` re-evaluates the loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss


def gradients(group: dict[str, Any]) -> Iterator[tuple[Tensor, Tensor]]:
    """``(parameter, gradient)`` for each parameter of ``group`` that has a gradient; the
    gradient is negated when the group has ``maximize=True``, so updates always descend."""
    for p in group["params"]:
        if p.grad is None:
            continue
        yield p, (-p.grad if group["maximize"] else p.grad)
