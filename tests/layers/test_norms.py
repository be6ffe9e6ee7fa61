"""Hand-written norms against torch.nn: forward, backward, running statistics, state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modernvision import layers

ATOL = 1e-5


def _randomise_affine(module: nn.Module) -> None:
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.randn_like(param) * 0.5 + (1.0 if name == "weight" else 0.0))


def _pair(ours_cls: type, theirs_cls: type, *args, **kwargs) -> tuple[nn.Module, nn.Module]:
    theirs = theirs_cls(*args, **kwargs)
    _randomise_affine(theirs)
    ours = ours_cls(*args, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same names, same order
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _check_step(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    """Forward, input gradient and parameter gradients agree; so do buffers afterwards."""
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    torch.testing.assert_close(ya, yb, atol=ATOL, rtol=0)
    upstream = torch.randn_like(yb)
    (ya * upstream).sum().backward()
    (yb * upstream).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=ATOL, rtol=0)
    for (name, pa), (_, pb) in zip(ours.named_parameters(), theirs.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=ATOL, rtol=0, msg=name)
        pa.grad, pb.grad = None, None
    for (name, ba), (_, bb) in zip(ours.named_buffers(), theirs.named_buffers()):
        torch.testing.assert_close(ba, bb, atol=ATOL, rtol=0, msg=name)


def _check_train_then_eval(ours: nn.Module, theirs: nn.Module, shape: tuple[int, ...],
                           steps: int = 4) -> None:
    for step in range(steps):
        # Shifted, scaled batches so that running statistics move away from (0, 1).
        _check_step(ours.train(), theirs.train(), torch.randn(shape) * (1 + step) + step)
    _check_step(ours.eval(), theirs.eval(), torch.randn(shape) * 2 + 1)


BATCH_NORM_CASES = [
    (layers.BatchNorm1d, nn.BatchNorm1d, (8, 5), {}),
    (layers.BatchNorm1d, nn.BatchNorm1d, (6, 5, 7), {}),
    (layers.BatchNorm1d, nn.BatchNorm1d, (6, 5, 7), dict(momentum=None)),
    (layers.BatchNorm1d, nn.BatchNorm1d, (8, 5), dict(affine=False, eps=1e-3)),
    (layers.BatchNorm2d, nn.BatchNorm2d, (4, 3, 6, 5), {}),
    (layers.BatchNorm2d, nn.BatchNorm2d, (4, 3, 6, 5), dict(momentum=None)),
    (layers.BatchNorm2d, nn.BatchNorm2d, (4, 3, 6, 5), dict(momentum=0.5, bias=False)),
    (layers.BatchNorm2d, nn.BatchNorm2d, (2, 3, 4, 4), dict(track_running_stats=False)),
    (layers.BatchNorm2d, nn.BatchNorm2d, (1, 4, 3, 3), dict(affine=False)),
]


@pytest.mark.parametrize("ours_cls,theirs_cls,shape,kwargs", BATCH_NORM_CASES,
                         ids=[f"{c[0].__name__}-{c[2]}-{c[3]}" for c in BATCH_NORM_CASES])
def test_batch_norm_equals_torch(ours_cls: type, theirs_cls: type, shape: tuple,
                                 kwargs: dict) -> None:
    ours, theirs = _pair(ours_cls, theirs_cls, shape[1], **kwargs)
    _check_train_then_eval(ours, theirs, shape)
    if ours.track_running_stats:
        assert int(ours.num_batches_tracked) == 4
        assert not torch.allclose(ours.running_mean, torch.zeros_like(ours.running_mean))


def test_batch_norm_running_stats_by_hand() -> None:
    """Running var stores the unbiased batch variance; normalisation uses the biased one."""
    bn = layers.BatchNorm1d(1, momentum=0.5, affine=False)
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])  # mean 3, biased var 3.5, unbiased 14/3
    y = bn(x)
    torch.testing.assert_close(y.flatten(), (x.flatten() - 3) / (3.5 + 1e-5) ** 0.5)
    torch.testing.assert_close(bn.running_mean, torch.tensor([1.5]))
    torch.testing.assert_close(bn.running_var, torch.tensor([0.5 + 0.5 * 14 / 3]))


def test_batch_norm_cumulative_average_with_momentum_none() -> None:
    bn = layers.BatchNorm1d(2, momentum=None)
    batches = [torch.randn(16, 2) + i for i in range(3)]
    for batch in batches:
        bn(batch)
    expected = torch.stack([b.mean(0) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected)


def test_batch_norm_input_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layers.BatchNorm2d(3)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, L\)"):
        layers.BatchNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="3 channels"):
        layers.BatchNorm2d(3)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layers.BatchNorm1d(3)(torch.randn(1, 3))
    layers.BatchNorm1d(3).eval()(torch.randn(1, 3))  # fine in eval mode


@pytest.mark.parametrize("shape,normalized_shape,kwargs", [
    ((4, 10), 10, {}),
    ((2, 3, 5, 6), (5, 6), {}),
    ((2, 7, 8), [8], dict(eps=1e-3, bias=False)),
    ((3, 4, 9), (4, 9), dict(elementwise_affine=False)),
])
def test_layer_norm_equals_torch(shape: tuple, normalized_shape, kwargs: dict) -> None:
    ours, theirs = _pair(layers.LayerNorm, nn.LayerNorm, normalized_shape, **kwargs)
    _check_train_then_eval(ours, theirs, shape, steps=1)


def test_layer_norm_shape_error() -> None:
    with pytest.raises(ValueError, match=r"\(\*, 5, 6\)"):
        layers.LayerNorm((5, 6))(torch.randn(2, 6, 5))


@pytest.mark.parametrize("shape,kwargs", [
    ((3, 4, 6, 5), {}),
    ((3, 4, 6, 5), dict(affine=True)),
    ((3, 4, 6, 5), dict(affine=True, track_running_stats=True)),
    ((3, 4, 6, 5), dict(track_running_stats=True, momentum=0.3, eps=1e-3)),
    ((4, 6, 5), dict(affine=True)),  # unbatched (C, H, W)
])
def test_instance_norm_equals_torch(shape: tuple, kwargs: dict) -> None:
    ours, theirs = _pair(layers.InstanceNorm2d, nn.InstanceNorm2d, shape[-3], **kwargs)
    _check_train_then_eval(ours, theirs, shape, steps=3)


def test_instance_norm_input_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        layers.InstanceNorm2d(3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        layers.InstanceNorm2d(3)(torch.randn(2, 3, 1, 1))


@pytest.mark.parametrize("shape,groups,kwargs", [
    ((2, 6, 5, 5), 3, {}),
    ((2, 6, 5, 5), 1, {}),
    ((2, 6, 5, 5), 6, dict(eps=1e-3)),
    ((3, 8, 7), 4, dict(affine=False)),
    ((4, 8), 2, dict(bias=False)),
])
def test_group_norm_equals_torch(shape: tuple, groups: int, kwargs: dict) -> None:
    ours, theirs = _pair(layers.GroupNorm, nn.GroupNorm, groups, shape[1], **kwargs)
    _check_train_then_eval(ours, theirs, shape, steps=1)


def test_group_norm_errors() -> None:
    with pytest.raises(ValueError, match="divisible by num_groups"):
        layers.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"\(N, 6, \*\)"):
        layers.GroupNorm(3, 6)(torch.randn(2, 4, 3, 3))


def test_norms_are_built_from_plain_ops_not_torch_kernels(monkeypatch) -> None:
    """Guard against delegating to F.batch_norm & co: make them fail and run every norm."""
    import torch.nn.functional as F

    def refuse(*args, **kwargs):
        raise AssertionError("delegated to torch's norm kernel")

    for name in ("batch_norm", "layer_norm", "group_norm", "instance_norm"):
        monkeypatch.setattr(F, name, refuse)
    x = torch.randn(2, 4, 3, 3)
    layers.BatchNorm2d(4)(x)
    layers.InstanceNorm2d(4)(x)
    layers.GroupNorm(2, 4)(x)
    layers.LayerNorm((3, 3))(x)
