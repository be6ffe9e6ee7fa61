"""RoI max pooling against torchvision.ops.roi_pool: values, gradients (ties too), gradcheck."""

import pytest
import torch
import torchvision

from modernvision import ops


def make_case(seed: int, *, dtype=torch.float32, ties: bool = False, num_rois: int = 12):
    g = torch.Generator().manual_seed(seed)
    height, width = (
        int(torch.randint(3, 24, (1,), generator=g)),
        int(torch.randint(3, 24, (1,), generator=g)),
    )
    x = torch.randn(2, 3, height, width, generator=g, dtype=torch.float64)
    if ties:  # few distinct values: maxima are tied within bins
        x = x.round()
    scale = [1.0, 0.5, 0.25, 0.3][seed % 4]
    xy = torch.rand(num_rois, 2, generator=g, dtype=torch.float64)
    xy = xy * torch.tensor([width, height]) / scale * 1.3 - 4
    wh = torch.rand(num_rois, 2, generator=g, dtype=torch.float64) * 30
    wh[::5] = 0.0
    corners = torch.cat([xy, xy + wh], dim=1)
    if seed % 2:  # coordinates at .5 after scaling exercise round-half-away-from-zero
        corners = (corners * scale).round().div(scale) + 0.5 / scale
    batch = torch.randint(0, 2, (num_rois, 1), generator=g).to(torch.float64)
    return x.to(dtype), torch.cat([batch, corners], dim=1).to(dtype), scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_roi_pool_values_and_gradients_equal_torchvision(dtype, ties):
    for seed in range(4):
        x, rois, scale = make_case(seed, dtype=dtype, ties=ties)
        for output_size in [(7, 7), (2, 3), 1]:
            x_ref = x.clone().requires_grad_()
            x_ours = x.clone().requires_grad_()
            expected = torchvision.ops.roi_pool(x_ref, rois, output_size, scale)
            ours = ops.roi_pool(x_ours, rois, output_size, scale)
            assert torch.equal(ours, expected)
            grad_out = torch.randn(expected.shape, dtype=dtype)
            expected.backward(grad_out)
            ours.backward(grad_out)
            # Same cells receive the gradient; sums may differ in the last float32 bit.
            torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-6)


def test_roi_pool_non_contiguous_and_list_boxes():
    x, rois, scale = make_case(3)
    x_sliced = torch.stack([x, -x], dim=-1).flatten(-2)[..., ::2]  # a strided view of x
    assert not x_sliced.is_contiguous()
    expected = torchvision.ops.roi_pool(x, rois, (4, 4), scale)
    assert torch.equal(ops.roi_pool(x_sliced, rois, (4, 4), scale), expected)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    expected = torchvision.ops.roi_pool(x, boxes, (4, 4), scale)
    assert torch.equal(ops.roi_pool(x, boxes, (4, 4), scale), expected)
    assert torch.equal(ops.RoIPool((4, 4), scale)(x, boxes), expected)


def test_roi_pool_gradcheck_float64():
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 0.7, 6.2, 5.9], [0, -2.0, -1.0, 3.1, 4.4]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ops.roi_pool(t, rois, (3, 2), 0.7), (x,))


def test_roi_pool_hand_computed():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = ops.roi_pool(x, torch.tensor([[0, 0.0, 0, 3, 3]]), 2)
    assert out.view(-1).tolist() == [5.0, 7.0, 13.0, 15.0]
    # A region entirely outside the map has empty bins, which pool to 0.
    assert ops.roi_pool(x, torch.tensor([[0, 10.0, 10, 12, 12]]), 2).abs().sum() == 0


def test_roi_pool_empty_and_errors():
    x = torch.randn(2, 3, 8, 8)
    assert ops.roi_pool(x, torch.zeros(0, 5), (7, 7)).shape == (0, 3, 7, 7)
    with pytest.raises(ValueError, match="x2 >= x1"):
        ops.roi_pool(x, torch.tensor([[0, 1.0, 5, 5, 1]]), 2)
    with pytest.raises(ValueError, match="not a batch index"):
        ops.roi_pool(x, torch.tensor([[0.5, 1.0, 1, 5, 5]]), 2)
    with pytest.raises(TypeError, match="floating point"):
        ops.roi_pool(x.long(), torch.tensor([[0, 1.0, 1, 5, 5]]), 2)
    with pytest.raises(ValueError, match="spatial_scale"):
        ops.roi_pool(x, torch.tensor([[0, 1.0, 1, 5, 5]]), 2, spatial_scale=0.0)
