"""Helpers shared by the model tests, handed out as fixtures.

Tests run with ``--import-mode=importlib``, so a test module cannot import another one or a
helper module beside it; a fixture that returns the helper function is the supported way.
"""

import contextlib
from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn

from modernvision.models import convert_torchvision_state_dict, create, get_entry


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomize_bn(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BN statistics and affine parameters, so a mis-mapped BN shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.25 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))


def _torchvision_pair(
    name: str, *, skip_init: bool = False, **ref_kwargs
) -> tuple[nn.Module, nn.Module]:
    """Our model ``name`` and its torchvision counterpart (``weights=None``, built with
    ``ref_kwargs``), both in eval mode: torchvision's BN randomised, then its state dict
    converted and loaded into ours. ``skip_init`` builds ours on the meta device, so that every
    tensor comes from torchvision's without paying for our own initialisation."""
    ref = getattr(torchvision.models, get_entry(name).torchvision)(**ref_kwargs).eval()
    _randomize_bn(ref)
    with torch.device("meta") if skip_init else contextlib.nullcontext():
        ours = create(name).eval()
    ours.load_state_dict(
        convert_torchvision_state_dict(name, ref.state_dict()), assign=skip_init
    )
    return ours, ref


def _logsumexp(out: torch.Tensor) -> torch.Tensor:
    return out.logsumexp(1).sum()


def _check_grads(
    model: nn.Module,
    x: torch.Tensor,
    num_classes: int,
    *,
    loss: Callable[[torch.Tensor], torch.Tensor] = _logsumexp,
    nonzero: bool = False,
) -> None:
    """Finite ``(B, num_classes)`` logits, and a finite (``nonzero``: and non-zero) gradient in
    every parameter after backpropagating ``loss(logits)`` (default: summed ``logsumexp``)."""
    out = model(x)
    assert out.shape == (x.shape[0], num_classes) and torch.isfinite(out).all()
    loss(out).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        if nonzero:
            assert p.grad.abs().sum() > 0, pname


@pytest.fixture
def num_params() -> Callable[[nn.Module], int]:
    """``num_params(model)``: the number of parameters."""
    return _num_params


@pytest.fixture(scope="session")
def randomize_bn() -> Callable[..., None]:
    """``randomize_bn(model, seed=1)``: non-trivial BN statistics and affine parameters."""
    return _randomize_bn


@pytest.fixture
def torchvision_pair() -> Callable[..., tuple[nn.Module, nn.Module]]:
    """``ours, ref = torchvision_pair(name, skip_init=False, **ref_kwargs)``: same weights,
    torchvision's BN randomised."""
    return _torchvision_pair


@pytest.fixture
def check_grads() -> Callable[..., None]:
    """``check_grads(model, x, num_classes, loss=..., nonzero=False)``: every parameter gets a
    gradient."""
    return _check_grads
