"""RoIAlign against torchvision.ops.roi_align: values (atol 1e-5), gradients, gradcheck and
gradgradcheck, errors; on CUDA (marked gpu) the Triton kernels against torchvision's CUDA kernels.
"""

import functools

import pytest
import torch
import torchvision

from modernvision import ops


def make_case(seed: int, *, dtype=torch.float32, num_rois: int = 12, channels: int = 3):
    g = torch.Generator().manual_seed(seed)
    height, width = (
        int(torch.randint(4, 24, (1,), generator=g)),
        int(torch.randint(4, 24, (1,), generator=g)),
    )
    x = torch.randn(2, channels, height, width, generator=g, dtype=torch.float64).to(dtype)
    scale = [1.0, 0.5, 0.25][seed % 3]
    # Boxes partly outside the map, some tiny or zero-sized, in image coordinates.
    xy = torch.rand(num_rois, 2, generator=g, dtype=torch.float64)
    xy = xy * torch.tensor([width, height]) / scale * 1.3 - 4
    wh = torch.rand(num_rois, 2, generator=g, dtype=torch.float64) * 30
    wh[::5] = 0.0
    batch = torch.randint(0, 2, (num_rois, 1), generator=g).to(torch.float64)
    rois = torch.cat([batch, xy, xy + wh], dim=1).to(dtype)
    return x, rois, scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
def test_roi_align_equals_torchvision(dtype, aligned, sampling_ratio):
    for seed in range(4):
        x, rois, scale = make_case(seed, dtype=dtype)
        for output_size in [(7, 7), (3, 5), 1]:
            expected = torchvision.ops.roi_align(
                x, rois, output_size, scale, sampling_ratio, aligned
            )
            ours = ops.roi_align(x, rois, output_size, scale, sampling_ratio, aligned)
            assert ours.dtype == dtype and ours.shape == expected.shape
            torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_roi_align_non_contiguous_and_list_boxes():
    x, rois, scale = make_case(5, channels=6)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    x_sliced = torch.stack([x, -x], dim=2).flatten(1, 2)[:, ::2]  # a strided view of x
    assert not x_sliced.is_contiguous()
    expected = torchvision.ops.roi_align(x, rois, (4, 4), scale, 2, True)
    for inp in (x_cl, x_sliced):
        torch.testing.assert_close(ops.roi_align(inp, rois, (4, 4), scale, 2, True), expected)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    expected = torchvision.ops.roi_align(x, boxes, (4, 4), scale, 2, True)
    torch.testing.assert_close(ops.roi_align(x, boxes, (4, 4), scale, 2, True), expected)
    module = ops.RoIAlign((4, 4), scale, 2, aligned=True)
    torch.testing.assert_close(module(x, boxes), expected)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_gradient_equals_torchvision(aligned):
    for seed in range(3):
        x, rois, scale = make_case(seed, dtype=torch.float64)
        grad_out = torch.randn(rois.shape[0], 3, 3, 4, dtype=torch.float64)
        x_ref = x.clone().requires_grad_()
        torchvision.ops.roi_align(x_ref, rois, (3, 4), scale, -1, aligned).backward(grad_out)
        x_ours = x.clone().requires_grad_()
        ops.roi_align(x_ours, rois, (3, 4), scale, -1, aligned).backward(grad_out)
        torch.testing.assert_close(x_ours.grad, x_ref.grad)


def test_roi_align_gradcheck_float64():
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(
        [[0, 1.3, 0.7, 6.2, 5.9], [0, -2.0, -1.0, 3.1, 4.4], [0, 0.0, 0.0, 12.0, 12.0]],
        dtype=torch.float64,
    )
    for sampling_ratio, aligned in [(-1, False), (2, True)]:
        fn = functools.partial(
            ops.roi_align,
            boxes=rois,
            output_size=(3, 2),
            spatial_scale=0.7,
            sampling_ratio=sampling_ratio,
            aligned=aligned,
        )
        assert torch.autograd.gradcheck(fn, (x,))
        # Linear in the input: the second derivative is zero, and must be computable.
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_roi_align_empty_inputs():
    x = torch.randn(2, 3, 8, 8)
    out = ops.roi_align(x, torch.zeros(0, 5), (7, 7))
    assert out.shape == torchvision.ops.roi_align(x, torch.zeros(0, 5), (7, 7)).shape
    boxes = [torch.zeros(0, 4), torch.tensor([[1.0, 1, 5, 5]])]
    torch.testing.assert_close(
        ops.roi_align(x, boxes, 2, 1.0, 2), torchvision.ops.roi_align(x, boxes, 2, 1.0, 2)
    )


def test_roi_align_errors():
    x = torch.randn(2, 3, 8, 8)
    good = torch.tensor([[0, 1.0, 1, 5, 5]])
    with pytest.raises(ValueError, match=r"Tensor\[K, 5\]"):
        ops.roi_align(x, good[:, 1:], 2)
    with pytest.raises(ValueError, match="x2 >= x1"):
        ops.roi_align(x, torch.tensor([[0, 5.0, 1, 1, 5]]), 2)
    with pytest.raises(ValueError, match=r"not a batch index in \[0, 2\)"):
        ops.roi_align(x, torch.tensor([[2, 1.0, 1, 5, 5]]), 2)
    with pytest.raises(ValueError, match="output_size"):
        ops.roi_align(x, good, (0, 2))
    with pytest.raises(ValueError, match=r"input must have shape \[N, C, H, W\]"):
        ops.roi_align(x[0], good, 2)
    with pytest.raises(ValueError, match="one Tensor"):
        ops.roi_align(x, [good[:, 1:]], 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_roi_align_equals_torchvision():
    # The Triton kernels repeat torchvision's CUDA float32 operations: the same output bits.
    for aligned in (False, True):
        for sampling_ratio in (-1, 2, 5):
            x, rois, scale = make_case(1, channels=40, num_rois=50)
            x, rois = x.cuda().requires_grad_(), rois.cuda()
            expected = torchvision.ops.roi_align(x, rois, 7, scale, sampling_ratio, aligned)
            ours = ops.roi_align(x, rois, 7, scale, sampling_ratio, aligned)
            torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
            g_ref = torch.autograd.grad(expected.sum(), x)[0]
            g_ours = torch.autograd.grad(ours.sum(), x)[0]
            torch.testing.assert_close(g_ours, g_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_roi_align_channels_last_and_double_backward():
    x, rois, scale = make_case(2, channels=32, num_rois=20)
    x, rois = x.cuda(), rois.cuda()
    grad_out = torch.randn(rois.shape[0], 32, 4, 4, device="cuda", requires_grad=True)
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = ops.roi_align(x_cl, rois, 4, scale, 2, True)
    (grad,) = torch.autograd.grad(out, x_cl, grad_out, create_graph=True)
    ref = x.clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad(
        torchvision.ops.roi_align(ref, rois, 4, scale, 2, True), ref, grad_out
    )
    torch.testing.assert_close(grad, grad_ref, atol=1e-5, rtol=1e-5)
    # d<grad, v>/d(grad_out) is RoIAlign applied to v (the gradient is linear in grad_out).
    v = torch.randn_like(x)
    (second,) = torch.autograd.grad((grad * v).sum(), grad_out)
    expected = torchvision.ops.roi_align(v, rois, 4, scale, 2, True)
    torch.testing.assert_close(second, expected, atol=1e-5, rtol=1e-5)


def test_both_evaluation_strategies_equal_torchvision(monkeypatch):
    import sys

    module = sys.modules["modernvision.ops.roi_align"]
    used = []
    for name in ("_align_band", "_align_taps"):
        original = getattr(module, name)

        def spy(*args, _original=original, _name=name):
            used.append(_name)
            return _original(*args)

        monkeypatch.setattr(module, name, spy)
    x = torch.randn(1, 4, 60, 60, dtype=torch.float64)
    # A large region sampled once per bin (sparse taps) and small regions (dense taps).
    rois = torch.tensor(
        [[0, 1.0, 2.0, 58.0, 57.0], [0, 3.0, 3.0, 6.0, 7.0], [0, 10.0, 10.0, 12.5, 11.0]],
        dtype=torch.float64,
    )
    for ratio in (1, 2, -1):
        expected = torchvision.ops.roi_align(x, rois, (7, 7), 1.0, ratio, True)
        torch.testing.assert_close(ops.roi_align(x, rois, (7, 7), 1.0, ratio, True), expected)
    assert {"_align_band", "_align_taps"} <= set(used)
