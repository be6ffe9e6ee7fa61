"""RMSProp: divide the gradient by a running root-mean-square of recent gradients, written out.

Papers:
    Tieleman and Hinton, "Lecture 6.5 - RMSProp: divide the gradient by a running average of its
    recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012 (no paper, no arXiv).
    Graves, "Generating Sequences With Recurrent Neural Networks", 2013, arXiv:1308.0850,
    Eqs. 38-41: the centred variant (subtract the squared running mean of the gradient) with
    momentum.

Update, per parameter ``p`` with gradient ``g`` (torch.optim.RMSprop's formulation)::

    g <- g + weight_decay * p                      # coupled L2 penalty
    v <- alpha * v + (1 - alpha) * g^2
    m <- alpha * m + (1 - alpha) * g               (centred only)
    s <- sqrt(v - m^2) + eps   (centred)    or     s <- sqrt(v) + eps
    b <- momentum * b + g / s;  p <- p - lr * b    (momentum > 0)
    p <- p - lr * g / s                            (otherwise)

Departures from the papers: ``eps`` is added after the square root (Graves adds it inside);
Graves' momentum buffer also absorbs the learning rate, here the lr multiplies the buffer at the
update, as in torch.
"""

from __future__ import annotations

from typing import Any

import torch

from modernvision.optim._base import HandWrittenOptimizer, ParamsT, gradients
from modernvision.optim._checks import check_non_negative


class RMSProp(HandWrittenOptimizer):
    """RMSProp with optional centring, momentum and L2 weight decay.

    Takes ``torch.optim.RMSprop``'s arguments and keeps its state under the same keys
    (``step``, ``square_avg``, ``grad_avg``, ``momentum_buffer``).

    Args:
        params: parameters, or dicts defining parameter groups (each may override any option).
        lr: learning rate.
        alpha: decay rate of the running averages.
        eps: added to the root-mean-square for numerical stability.
        weight_decay: L2 penalty coefficient, added to the gradient.
        momentum: momentum factor applied to the scaled gradient (0 disables it).
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
        maximize: ascend the objective instead of descending it.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_non_negative(group, "lr", "alpha", "eps", "momentum", "weight_decay")
        if not 0.0 <= group["alpha"] <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {group['alpha']!r}")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        for p, grad in gradients(group):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["square_avg"] = torch.zeros_like(p)
                if momentum > 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = torch.zeros_like(p)
            state["step"] = int(state["step"]) + 1
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)

            square_avg = state["square_avg"]
            square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg.lerp_(grad, 1 - alpha)
                # Graves (2013), Eq. 40: variance estimate E[g^2] - E[g]^2.
                rms = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(eps)
            else:
                rms = square_avg.sqrt().add_(eps)

            if momentum > 0:
                buf = state["momentum_buffer"]
                buf.mul_(momentum).addcdiv_(grad, rms)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(grad, rms, value=-lr)


RMSprop = RMSProp
"""Alias spelled as in ``torch.optim``, so that ``optim.RMSprop`` drops in."""

