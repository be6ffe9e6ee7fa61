"""Stochastic gradient descent with heavy-ball or Nesterov momentum, written out.

Papers:
    Polyak, "Some methods of speeding up the convergence of iteration methods", 1964 (heavy ball).
    Nesterov, "A method for solving the convex programming problem with convergence rate
    O(1/k^2)", 1983.
    Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013 (no arXiv id): momentum for deep nets, Nesterov as a look-ahead.

Update, per parameter ``p`` with gradient ``g`` (torch.optim.SGD's formulation, kept on purpose so
that this class drops in for it)::

    g <- g + weight_decay * p                     # L2 penalty added to the gradient ("coupled")
    b <- g                           on the first step
    b <- momentum * b + (1 - dampening) * g       afterwards
    d <- g + momentum * b  (Nesterov)   or   d <- b
    p <- p - lr * d

Departures from the papers:
    * The learning rate multiplies the buffer at the update instead of being folded into it
      (Sutskever et al. write ``v <- mu v - lr g``). The two agree for a constant lr and differ
      while the lr changes: here a change in lr takes effect at once.
    * Nesterov momentum is the "look-ahead gradient" reformulation (Bengio et al., 2012,
      arXiv:1212.0901) that needs the gradient at the current parameters only.
    * ``dampening`` scales new gradients into the buffer, the first step excepted (torch's rule).
"""

from __future__ import annotations

from typing import Any

from modernvision.optim._base import HandWrittenOptimizer, ParamsT, gradients
from modernvision.optim._checks import check_non_negative


class SGD(HandWrittenOptimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay.

    Takes ``torch.optim.SGD``'s arguments and keeps its state under the same key
    (``momentum_buffer``), so state dicts load into either.

    Args:
        params: parameters, or dicts defining parameter groups (each may override any option).
        lr: learning rate.
        momentum: momentum factor (0 disables the buffer).
        dampening: fraction of each new gradient held back from the momentum buffer.
        weight_decay: L2 penalty coefficient, added to the gradient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective instead of descending it.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_non_negative(group, "lr", "momentum", "dampening", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov=True needs momentum > 0 and dampening == 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum = group["lr"], group["momentum"]
        dampening, weight_decay = group["dampening"], group["weight_decay"]
        for p, grad in gradients(group):
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    # The first step copies the gradient in, undamped.
                    buf = state["momentum_buffer"] = grad.detach().clone()
                else:
                    buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
            p.add_(grad, alpha=-lr)
