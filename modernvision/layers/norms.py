"""Normalisation layers written with plain tensor ops: batch, layer, instance and group norm.

Papers:
    Ioffe and Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift", 2015, arXiv:1502.03167 (Algorithms 1 and 2).
    Ba, Kiros and Hinton, "Layer Normalization", 2016, arXiv:1607.06450.
    Ulyanov, Vedaldi and Lempitsky, "Instance Normalization: The Missing Ingredient for Fast
    Stylization", 2016, arXiv:1607.08022.
    Wu and He, "Group Normalization", 2018, arXiv:1803.08494.

All four compute ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance and
differ only in the axes the statistics are taken over. They take torch.nn's constructor arguments
and use its parameter and buffer names (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), so state dicts load either way.

Departures from the papers, all following torch.nn:
    * Batch norm's running averages are exponential moving averages with ``momentum`` (the weight
      of the new batch), or a cumulative average when ``momentum=None``; Algorithm 2 averages the
      statistics of many mini-batches after training instead.
    * The running variance stores the unbiased batch variance (``m / (m - 1)``, as in Algorithm 2),
      while each batch is normalised with the biased one.
    * Instance norm tracks no running statistics by default; when it does, a batch updates them with
      the mean over its instances of the per-instance statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _check_eps(eps: float) -> None:
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")


def _affine_parameters(module: nn.Module, shape: Sequence[int], affine: bool, bias: bool,
                       factory: dict) -> None:
    if affine:
        module.weight = nn.Parameter(torch.ones(*shape, **factory))
        if bias:
            module.bias = nn.Parameter(torch.zeros(*shape, **factory))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: nn.Module) -> None:
    """Weight to 1, bias to 0 (those that exist)."""
    if module.weight is not None:
        nn.init.ones_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _normalise(x: Tensor, mean: Tensor, var: Tensor, eps: float) -> Tensor:
    return (x - mean) * torch.rsqrt(var + eps)


def _scale_shift(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: Sequence[int]
                 ) -> Tensor:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


class _RunningStatsNorm(nn.Module):
    """Shared state of batch and instance norm: per-channel affine parameters and running stats."""

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, device: torch.device | str | None,
                 dtype: torch.dtype | None, bias: bool) -> None:
        super().__init__()
        if int(num_features) != num_features or num_features <= 0:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        _check_eps(eps)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        factory = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine_parameters(self, (self.num_features,), affine, bias, factory)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features, **factory))
            self.register_buffer("running_var", torch.ones(self.num_features, **factory))
            self.register_buffer("num_batches_tracked",
                                 torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean to 0, running variance to 1, batch count to 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, the weight to 1 and the bias to 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def _update_running_stats(self, mean: Tensor, var: Tensor, count: int,
                              momentum: float) -> None:
        """Blend batch statistics (``count`` values per channel) into the running ones."""
        with torch.no_grad():
            unbiased = var * (count / (count - 1)) if count > 1 else var
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


class _BatchNorm(_RunningStatsNorm):
    """Batch norm over every axis but the channel axis (1)."""

    _expected_dims: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` per channel with batch (training) or running (eval) statistics."""
        if x.dim() not in self._expected_dims:
            raise ValueError(f"{type(self).__name__} expects input of shape {self._shape_text}, "
                             f"got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects "
                             f"{self.num_features} channels at dim 1, got input of shape "
                             f"{tuple(x.shape)}")
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)  # broadcast per-channel vectors to x
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            y = _normalise(x, self.running_mean.reshape(shape), self.running_var.reshape(shape),
                           self.eps)
            return _scale_shift(y, self.weight, self.bias, shape)
        count = x.numel() // x.shape[1]
        if self.training and count == 1:
            raise ValueError(f"{type(self).__name__} needs more than 1 value per channel "
                             f"when training, got input of shape {tuple(x.shape)}")
        # Two passes, mean then mean of squared deviations: as stable as Welford's var() and,
        # on CPU, several times faster for reductions over (N, H, W).
        mean = x.mean(dim=dims, keepdim=True)
        centered = x - mean
        var = (centered * centered).mean(dim=dims, keepdim=True)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
            self._update_running_stats(mean.reshape(-1), var.reshape(-1), count, momentum)
        y = centered * torch.rsqrt(var + self.eps)
        return _scale_shift(y, self.weight, self.bias, shape)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` inputs (Ioffe and Szegedy, 2015).

    Args:
        num_features: number of channels ``C``.
        eps: added to the variance for numerical stability.
        momentum: weight of each new batch in the running statistics; ``None`` for a cumulative
            average over all batches seen.
        affine: learn a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode; without them eval mode
            normalises with batch statistics too.
        device: device of the parameters and buffers.
        dtype: floating dtype of the parameters and buffers.
        bias: learn the ``bias`` (with ``affine``).
    """

    _expected_dims = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` inputs (Ioffe and Szegedy, 2015).

    Args: as :class:`BatchNorm1d`.
    """

    _expected_dims = (4,)
    _shape_text = "(N, C, H, W)"


class InstanceNorm2d(_RunningStatsNorm):
    """Instance normalisation: per sample and channel, over ``H, W`` (Ulyanov et al., 2016).

    Accepts ``(N, C, H, W)`` or unbatched ``(C, H, W)`` inputs.

    Args:
        num_features: number of channels ``C``.
        eps: added to the variance for numerical stability.
        momentum: weight of each new batch in the running statistics (``None`` freezes them).
        affine: learn a per-channel ``weight`` and ``bias`` (off by default, as in torch).
        track_running_stats: keep running statistics and use them in eval mode.
        device: device of the parameters and buffers.
        dtype: floating dtype of the parameters and buffers.
        bias: learn the ``bias`` (with ``affine``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each (sample, channel) plane of ``x``."""
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 4:
            raise ValueError("InstanceNorm2d expects input of shape (N, C, H, W) or (C, H, W), "
                             f"got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"InstanceNorm2d({self.num_features}) expects {self.num_features} "
                             f"channels at dim 1, got input of shape {tuple(x.shape)}")
        shape = [1, -1, 1, 1]
        if self.training or not self.track_running_stats:
            count = x.shape[2] * x.shape[3]
            if count == 1:
                raise ValueError("InstanceNorm2d needs more than 1 spatial element, got input "
                                 f"of shape {tuple(x.shape)}")
            mean = x.mean(dim=(2, 3), keepdim=True)
            var = x.var(dim=(2, 3), keepdim=True, correction=0)
            if self.training and self.track_running_stats and self.momentum is not None:
                # Each instance updates the running stats; the batch keeps their mean.
                self._update_running_stats(mean.mean(dim=(0, 2, 3)),
                                           var.mean(dim=(0, 2, 3)), count, self.momentum)
            y = _normalise(x, mean, var, self.eps)
        else:
            y = _normalise(x, self.running_mean.reshape(shape), self.running_var.reshape(shape),
                           self.eps)
        return _scale_shift(y, self.weight, self.bias, shape)


class LayerNorm(nn.Module):
    """Layer normalisation over the trailing ``normalized_shape`` axes (Ba et al., 2016).

    Args:
        normalized_shape: shape of the trailing axes to normalise over (an int for one axis).
        eps: added to the variance for numerical stability.
        elementwise_affine: learn a ``weight`` (and ``bias``) of shape ``normalized_shape``.
        bias: learn the ``bias`` (with ``elementwise_affine``).
        device: device of the parameters.
        dtype: floating dtype of the parameters.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(int(s) for s in shape)
        if not self.normalized_shape or min(self.normalized_shape) <= 0:
            raise ValueError("normalized_shape must be a positive int or a non-empty sequence of "
                             f"positive ints, got {normalized_shape!r}")
        _check_eps(eps)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias,
                           {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        """Weight to 1, bias to 0."""
        _reset_affine(self)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each sample over its trailing ``normalized_shape`` axes."""
        k = len(self.normalized_shape)
        if tuple(x.shape[x.dim() - k:]) != self.normalized_shape or x.dim() < k:
            raise ValueError(f"LayerNorm expects input of shape (*, "
                             f"{', '.join(map(str, self.normalized_shape))}), got "
                             f"{tuple(x.shape)}")
        dims = tuple(range(x.dim() - k, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, correction=0)
        y = _normalise(x, mean, var, self.eps)
        return _scale_shift(y, self.weight, self.bias, self.normalized_shape)


class GroupNorm(nn.Module):
    """Group normalisation: per sample, over groups of channels and all spatial axes (Wu and He).

    Accepts ``(N, C, *)`` inputs.

    Args:
        num_groups: number of channel groups ``G`` (``C`` must be divisible by it).
        num_channels: number of channels ``C``.
        eps: added to the variance for numerical stability.
        affine: learn a per-channel ``weight`` and ``bias``.
        device: device of the parameters.
        dtype: floating dtype of the parameters.
        bias: learn the ``bias`` (with ``affine``).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups}), a positive integer")
        _check_eps(eps)
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = eps, affine
        _affine_parameters(self, (self.num_channels,), affine, bias,
                           {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        """Weight to 1, bias to 0."""
        _reset_affine(self)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each (sample, group) of ``x``."""
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects input "
                             f"of shape (N, {self.num_channels}, *), got {tuple(x.shape)}")
        n = x.shape[0]
        grouped = x.reshape(n, self.num_groups, -1)  # (N, C, *) -> (N, G, C/G * prod(*))
        mean = grouped.mean(dim=2, keepdim=True)
        var = grouped.var(dim=2, keepdim=True, correction=0)
        y = _normalise(grouped, mean, var, self.eps).reshape(x.shape)
        return _scale_shift(y, self.weight, self.bias, [1, -1] + [1] * (x.dim() - 2))


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters: ``y = x * scale + shift``.

    ``scale = weight / sqrt(running_var + eps)`` and ``shift = bias - running_mean * scale``
    (Algorithm 2 of Ioffe and Szegedy: at inference batch norm is this affine map). Detectors
    fine-tune a pretrained backbone this way because batches of one or two large images give
    too noisy statistics (Detectron, torchvision). All four tensors are buffers, none trains;
    their names are batch norm's, and a ``num_batches_tracked`` entry in a loaded state dict is
    ignored, so batch-norm checkpoints load as they are.

    Args:
        num_features: number of channels ``C``.
        eps: added to the variance.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        if int(num_features) != num_features or num_features <= 0:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        _check_eps(eps)
        self.num_features, self.eps = int(num_features), eps
        self.register_buffer("weight", torch.ones(self.num_features))
        self.register_buffer("bias", torch.zeros(self.num_features))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))

    @classmethod
    def from_batch_norm(cls, bn: nn.Module) -> FrozenBatchNorm2d:
        """A frozen copy of a (torch.nn or our own) ``BatchNorm2d``'s current state."""
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.weight is not None:
                frozen.weight.copy_(bn.weight)
            if bn.bias is not None:
                frozen.bias.copy_(bn.bias)
            if bn.running_mean is not None:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
        return frozen.to(bn.running_mean.device if bn.running_mean is not None else "cpu")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = self.weight.reshape(shape) * (self.running_var.reshape(shape) + self.eps).rsqrt()
        shift = self.bias.reshape(shape) - self.running_mean.reshape(shape) * scale
        return x * scale + shift


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every 2-d batch norm inside ``module`` (torch.nn's and ours) by a
    :class:`FrozenBatchNorm2d` holding its current state; returns ``module`` (or the frozen
    layer when ``module`` itself is a batch norm)."""
    if isinstance(module, (nn.BatchNorm2d, BatchNorm2d)):
        return FrozenBatchNorm2d.from_batch_norm(module)
    for name, child in module.named_children():
        frozen = freeze_batch_norm(child)
        if frozen is not child:
            setattr(module, name, frozen)
    return module


__all__ = ["BatchNorm1d", "BatchNorm2d", "FrozenBatchNorm2d", "GroupNorm", "InstanceNorm2d",
           "LayerNorm", "freeze_batch_norm"]
