"""FrozenBatchNorm2d against torchvision.ops.FrozenBatchNorm2d and batch norm in eval mode."""

import pytest
import torch
import torchvision
from torch import nn

from modernvision.layers import BatchNorm2d, FrozenBatchNorm2d, freeze_batch_norm


def _random_state(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"weight": 0.5 + torch.rand(n, generator=g), "bias": torch.randn(n, generator=g),
            "running_mean": torch.randn(n, generator=g),
            "running_var": 0.2 + torch.rand(n, generator=g)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_torchvision_and_has_its_keys(dtype):
    ref = torchvision.ops.FrozenBatchNorm2d(6, eps=1e-4).to(dtype)
    ours = FrozenBatchNorm2d(6, eps=1e-4).to(dtype)
    assert list(ours.state_dict()) == list(ref.state_dict())
    state = {k: v.to(dtype) for k, v in _random_state(6, 0).items()}
    ref.load_state_dict(state)
    ours.load_state_dict(state)
    x = torch.randn(3, 6, 5, 7, dtype=dtype)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    assert list(ours.parameters()) == []  # nothing trains


@pytest.mark.parametrize("bn_class", [nn.BatchNorm2d, BatchNorm2d])
def test_loads_batch_norm_state_and_equals_its_eval_mode(bn_class):
    bn = bn_class(4)
    with torch.no_grad():
        for k, v in _random_state(4, 1).items():
            getattr(bn, k).copy_(v)
    frozen = FrozenBatchNorm2d(4)
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is ignored
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    want = bn.eval()(x)
    torch.testing.assert_close(frozen(x), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(FrozenBatchNorm2d.from_batch_norm(bn)(x), want, rtol=1e-5,
                               atol=1e-6)
    frozen(x).sum().backward()
    assert x.grad is not None  # the input still gets its gradient


def test_freeze_batch_norm_replaces_every_batch_norm():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                        nn.Sequential(nn.ReLU(), BatchNorm2d(4)))
    net.eval()
    x = torch.randn(1, 3, 8, 8)
    want = net(x)
    freeze_batch_norm(net)
    assert isinstance(net[1], FrozenBatchNorm2d) and isinstance(net[2][1], FrozenBatchNorm2d)
    net.train()  # frozen statistics do not depend on the mode
    torch.testing.assert_close(net(x), want)
    with pytest.raises(ValueError, match="num_features"):
        FrozenBatchNorm2d(0)
