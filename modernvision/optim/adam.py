"""Adam, AMSGrad and AdamW, written out.

Papers:
    Kingma and Ba, "Adam: A Method for Stochastic Optimization", 2014, arXiv:1412.6980
    (Algorithm 1).
    Reddi, Kale and Kumar, "On the Convergence of Adam and Beyond", ICLR 2018,
    arXiv:1904.09237 (AMSGrad: normalise by the running maximum of the second moment).
    Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2017, arXiv:1711.05101
    (AdamW, Algorithm 2: decay the weights directly instead of adding an L2 term to the gradient).

Update, per parameter ``p`` with gradient ``g`` at step ``t`` (torch.optim.Adam's formulation)::

    p <- p * (1 - lr * weight_decay)               AdamW (decoupled)
    g <- g + weight_decay * p                      Adam (coupled L2)
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2
    v_max <- max(v_max, v)                         AMSGrad; v_max replaces v below
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The last line is Algorithm 1's ``p - lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
``m_hat = m / (1 - beta1^t)`` and ``v_hat = v / (1 - beta2^t)`` folded into a step size and a
denominator.

Departures from the papers:
    * AMSGrad keeps the maximum of the *uncorrected* second moment and then applies Adam's bias
      correction to it (Reddi et al. use no bias correction), as torch does.
    * AdamW multiplies the decay by the learning rate (``p *= 1 - lr * wd``); Loshchilov and
      Hutter multiply it by the schedule multiplier ``eta_t`` only, so ``wd`` here is their
      ``lambda / alpha``. This is torch's convention, kept so that hyper-parameters transfer.
"""

from __future__ import annotations

from typing import Any

import torch

from modernvision.optim._base import HandWrittenOptimizer, ParamsT, gradients
from modernvision.optim._checks import check_betas, check_non_negative


class Adam(HandWrittenOptimizer):
    """Adam (with optional AMSGrad) and coupled L2 weight decay.

    Takes ``torch.optim.Adam``'s arguments and keeps its state under the same keys (``step``,
    ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``).

    Args:
        params: parameters, or dicts defining parameter groups (each may override any option).
        lr: learning rate (``alpha`` in the paper).
        betas: decay rates ``(beta1, beta2)`` of the first and second moment estimates.
        eps: added to the denominator for numerical stability.
        weight_decay: weight decay coefficient (L2 added to the gradient; decoupled in AdamW).
        amsgrad: use AMSGrad's running maximum of the second moment.
        maximize: ascend the objective instead of descending it.
    """

    decoupled_weight_decay: bool = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_non_negative(group, "lr", "eps", "weight_decay")
        check_betas(group["betas"])

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for p, grad in gradients(group):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p)
            step = state["step"] = int(state["step"]) + 1

            if weight_decay != 0:
                if self.decoupled_weight_decay:
                    p.mul_(1 - lr * weight_decay)
                else:
                    grad = grad.add(p, alpha=weight_decay)

            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            second_moment = exp_avg_sq
            if group["amsgrad"]:
                torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                second_moment = state["max_exp_avg_sq"]

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            denom = (second_moment.sqrt() / bias_correction2**0.5).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before the Adam step).

    Takes ``torch.optim.AdamW``'s arguments; note the default ``weight_decay=1e-2`` as in torch.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
