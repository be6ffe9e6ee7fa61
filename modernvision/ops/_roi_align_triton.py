"""RoIAlign forward and backward passes as Triton kernels, for CUDA tensors.

"Mask R-CNN" (He et al., 2017, arXiv:1703.06870), sec. 3; the sampling, border rule and
``aligned`` shift are those of :mod:`modernvision.ops.roi_align` (torchvision's semantics).

One program handles a block of channels for all ``PH x PW`` bins of one region and walks the
region's sample grid in torchvision's order (``sampling_ratio`` 1 or 2: loops unrolled at compile
time; other ratios and the adaptive ``ceil(roi_size / bins)``: run-time loops). The feature map
(forward) and its gradient (backward) are addressed channels-last, so the four taps of a sample
are contiguous runs of channels: coalesced, 4-wide loads, and coalesced ``atomic_add``s in the
backward pass, which scatters ``grad / count`` times each bilinear weight to the four taps of
every sample, as torchvision's backward kernel does. The channel block and warp count are picked
per setting on the first CUDA call by timing three candidates (:func:`_run_tuned`).

Arithmetic. The float32 operations are those torchvision's CUDA kernel compiles to (read off its
sm_90 SASS): ``start = fma(x1, spatial_scale, -offset)``, sample position
``fma(p, bin, start) + ((i + 0.5) * bin) / grid``, the bilinear sum
``fma(w4, v4, fma(w3, v3, fma(w2, v2, w1 * v1)))`` accumulated sample by sample, then
``/ count``, every division IEEE-rounded (``div_rn``). Triton's ``/`` on float32 compiles to the
approximate ``div.full.f32`` (up to 2 ulp): that moved bin sizes and sample positions by an ulp,
and outputs on unit-variance features by up to 7e-5. The contractions are explicit ``tl.fma``s and
the kernels are compiled with ``enable_fp_fusion=False``, so that neither Triton nor ptxas fuses
any other multiply-add; the forward pass then reproduces torchvision's CUDA output. (Under
``TRITON_INTERPRET=1`` ``tl.fma`` rounds twice, which reproduces torchvision's CPU kernel
instead.) The backward pass multiplies by ``grad / count`` computed once per bin instead of
dividing each of the four products (1 ulp of a contribution; the order of the atomic additions
varies from run to run anyway).

Differentiating twice: the backward kernel is not itself differentiable, so when a graph of the
backward pass is requested (``create_graph=True``) the gradient is computed by the PyTorch
implementation, whose autograd graph supports higher derivatives.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _region(
    rois_ptr,
    k,
    spatial_scale,
    sampling_ratio,
    PH: tl.constexpr,
    PW: tl.constexpr,
    ALIGNED: tl.constexpr,
    SAMPLES: tl.constexpr,
):
    """Batch index, start, bin size and samples per bin of region ``k`` (torchvision's ops)."""
    roi = rois_ptr + k * 5
    batch = tl.load(roi).to(tl.int64)
    offset = -0.5 if ALIGNED else 0.0
    start_w = tl.fma(tl.load(roi + 1), spatial_scale, offset)
    start_h = tl.fma(tl.load(roi + 2), spatial_scale, offset)
    end_w = tl.fma(tl.load(roi + 3), spatial_scale, offset)
    end_h = tl.fma(tl.load(roi + 4), spatial_scale, offset)
    roi_w = end_w - start_w
    roi_h = end_h - start_h
    if not ALIGNED:
        roi_w = tl.maximum(roi_w, 1.0)
        roi_h = tl.maximum(roi_h, 1.0)
    bin_h = tl.math.div_rn(roi_h, PH * 1.0)
    bin_w = tl.math.div_rn(roi_w, PW * 1.0)
    if SAMPLES > 0:
        grid_h = tl.full((), SAMPLES, tl.int32)
        grid_w = tl.full((), SAMPLES, tl.int32)
    elif SAMPLES == 0:
        grid_h = tl.full((), sampling_ratio, tl.int32)
        grid_w = tl.full((), sampling_ratio, tl.int32)
    else:
        # ceil(roi_h / PH): the same division as bin_h.
        grid_h = tl.ceil(bin_h).to(tl.int32)
        grid_w = tl.ceil(bin_w).to(tl.int32)
    return batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w


@triton.jit
def _taps(start, p, bin_size, i, grid_f, size):
    """Sample ``i`` of ``grid_f`` in bins ``p``: in-map flag, low/high neighbour, weights."""
    pos = tl.fma(p, tl.broadcast_to(bin_size, p.shape), tl.broadcast_to(start, p.shape))
    pos = pos + tl.math.div_rn((i + 0.5) * bin_size, grid_f)
    inside = (pos >= -1.0) & (pos <= size)
    pos = tl.maximum(pos, 0.0)
    low = pos.to(tl.int32)
    edge = low >= size - 1
    low = tl.where(edge, size - 1, low)
    high = tl.where(edge, size - 1, low + 1)
    pos = tl.where(edge, low.to(tl.float32), pos)
    frac = pos - low.to(tl.float32)
    return inside, low, high, frac, 1.0 - frac


@triton.jit
def _tap_offsets(y, x, width, channels, cs):
    """Element offsets ``(bins, channels)`` of the four taps in a channels-last image."""
    row_low = y[1] * width
    row_high = y[2] * width
    p1 = ((row_low + x[1]).to(tl.int64) * channels)[:, None] + cs[None, :]
    p2 = ((row_low + x[2]).to(tl.int64) * channels)[:, None] + cs[None, :]
    p3 = ((row_high + x[1]).to(tl.int64) * channels)[:, None] + cs[None, :]
    p4 = ((row_high + x[2]).to(tl.int64) * channels)[:, None] + cs[None, :]
    return p1, p2, p3, p4


@triton.jit
def _interpolate(image, y, x, mask, width, channels, cs):
    """Bilinear value ``(bins, channels)`` of one sample per bin; exactly 0 off the map."""
    y_ok, _, _, ly, hy = y
    x_ok, _, _, lx, hx = x
    m = (y_ok & x_ok)[:, None] & mask
    p1, p2, p3, p4 = _tap_offsets(y, x, width, channels, cs)
    v1 = tl.load(image + p1, mask=m, other=0.0).to(tl.float32)
    v2 = tl.load(image + p2, mask=m, other=0.0).to(tl.float32)
    v3 = tl.load(image + p3, mask=m, other=0.0).to(tl.float32)
    v4 = tl.load(image + p4, mask=m, other=0.0).to(tl.float32)
    val = (hy * hx)[:, None] * v1
    val = tl.fma(tl.broadcast_to((hy * lx)[:, None], v2.shape), v2, val)
    val = tl.fma(tl.broadcast_to((ly * hx)[:, None], v3.shape), v3, val)
    val = tl.fma(tl.broadcast_to((ly * lx)[:, None], v4.shape), v4, val)
    return tl.where(m, val, 0.0)


@triton.jit
def _scatter(image, y, x, mask, width, channels, cs, scaled):
    """Add ``scaled`` times each tap's bilinear weight to the four taps of one sample per bin."""
    y_ok, _, _, ly, hy = y
    x_ok, _, _, lx, hx = x
    m = (y_ok & x_ok)[:, None] & mask
    p1, p2, p3, p4 = _tap_offsets(y, x, width, channels, cs)
    tl.atomic_add(image + p1, (hy * hx)[:, None] * scaled, mask=m, sem="relaxed")
    tl.atomic_add(image + p2, (hy * lx)[:, None] * scaled, mask=m, sem="relaxed")
    tl.atomic_add(image + p3, (ly * hx)[:, None] * scaled, mask=m, sem="relaxed")
    tl.atomic_add(image + p4, (ly * lx)[:, None] * scaled, mask=m, sem="relaxed")


# Integer arguments equal to 1 would otherwise be specialised into compile-time constants;
# `channels` stays specialised: divisible by 16, the taps load and add 4 channels at a time.
@triton.jit(do_not_specialize=["height", "width", "sampling_ratio"])
def _roi_align_kernel(
    features_ptr,  # (N, H, W, C) contiguous
    rois_ptr,  # (K, 5) float32 contiguous: batch index, x1, y1, x2, y2
    out_ptr,  # (K, C, PH, PW) contiguous
    channels,
    height,
    width,
    spatial_scale,
    sampling_ratio,
    PH: tl.constexpr,
    PW: tl.constexpr,
    ALIGNED: tl.constexpr,
    SAMPLES: tl.constexpr,  # > 0: samples per side, unrolled; 0: sampling_ratio; < 0: adaptive
    BLOCK_BINS: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    k = tl.program_id(0)
    c_block = tl.program_id(1)
    batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _region(
        rois_ptr, k, spatial_scale, sampling_ratio, PH, PW, ALIGNED, SAMPLES
    )
    count = tl.maximum(grid_h * grid_w, 1).to(tl.float32)
    grid_h_f = grid_h.to(tl.float32)
    grid_w_f = grid_w.to(tl.float32)

    bins = tl.arange(0, BLOCK_BINS)
    bin_ok = bins < PH * PW
    ph = (bins // PW).to(tl.float32)
    pw = (bins % PW).to(tl.float32)
    cs = c_block * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = bin_ok[:, None] & (cs < channels)[None, :]
    image = features_ptr + batch * height * width * channels
    acc = tl.zeros([BLOCK_BINS, BLOCK_C], dtype=tl.float32)
    # torchvision's order: rows of samples, then columns, one sample of every bin at a time.
    if SAMPLES > 0:  # unrolled: the taps of all samples can be in flight at once
        for iy in tl.static_range(SAMPLES):
            y = _taps(start_h, ph, bin_h, iy, grid_h_f, height)
            for ix in tl.static_range(SAMPLES):
                x = _taps(start_w, pw, bin_w, ix, grid_w_f, width)
                acc += _interpolate(image, y, x, mask, width, channels, cs)
    else:
        for iy in range(grid_h):
            y = _taps(start_h, ph, bin_h, iy, grid_h_f, height)
            for ix in range(grid_w):
                x = _taps(start_w, pw, bin_w, ix, grid_w_f, width)
                acc += _interpolate(image, y, x, mask, width, channels, cs)
    acc = tl.math.div_rn(acc, tl.broadcast_to(count, acc.shape))
    out = out_ptr + (k.to(tl.int64) * channels + cs[None, :]) * (PH * PW) + bins[:, None]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["height", "width", "sampling_ratio"])
def _roi_align_backward_kernel(
    grad_out_ptr,  # (K, C, PH, PW) contiguous
    rois_ptr,  # (K, 5) float32 contiguous: batch index, x1, y1, x2, y2
    grad_in_ptr,  # (N, H, W, C) float32 contiguous, zero-initialised
    channels,
    height,
    width,
    spatial_scale,
    sampling_ratio,
    PH: tl.constexpr,
    PW: tl.constexpr,
    ALIGNED: tl.constexpr,
    SAMPLES: tl.constexpr,
    BLOCK_BINS: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    k = tl.program_id(0)
    c_block = tl.program_id(1)
    batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _region(
        rois_ptr, k, spatial_scale, sampling_ratio, PH, PW, ALIGNED, SAMPLES
    )
    count = tl.maximum(grid_h * grid_w, 1).to(tl.float32)
    grid_h_f = grid_h.to(tl.float32)
    grid_w_f = grid_w.to(tl.float32)

    bins = tl.arange(0, BLOCK_BINS)
    bin_ok = bins < PH * PW
    ph = (bins // PW).to(tl.float32)
    pw = (bins % PW).to(tl.float32)
    cs = c_block * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = bin_ok[:, None] & (cs < channels)[None, :]
    grad_out = grad_out_ptr + (k.to(tl.int64) * channels + cs[None, :]) * (PH * PW) + bins[:, None]
    grad = tl.load(grad_out, mask=mask, other=0.0).to(tl.float32)
    scaled = tl.math.div_rn(grad, tl.broadcast_to(count, grad.shape))
    image = grad_in_ptr + batch * height * width * channels
    if SAMPLES > 0:
        for iy in tl.static_range(SAMPLES):
            y = _taps(start_h, ph, bin_h, iy, grid_h_f, height)
            for ix in tl.static_range(SAMPLES):
                x = _taps(start_w, pw, bin_w, ix, grid_w_f, width)
                _scatter(image, y, x, mask, width, channels, cs, scaled)
    else:
        for iy in range(grid_h):
            y = _taps(start_h, ph, bin_h, iy, grid_h_f, height)
            for ix in range(grid_w):
                x = _taps(start_w, pw, bin_w, ix, grid_w_f, width)
                _scatter(image, y, x, mask, width, channels, cs, scaled)


# sampling_ratio values compiled into unrolled loops (3 x 3 unrolled samples spill registers in
# the forward kernel on sm_90); others are passed at run time.
_UNROLLED = (1, 2)

# Tile shapes tried on the first call of each kernel and setting (elements per tile, warps):
# 8 or 4 elements per thread; for 7 x 7 bins all compile without register spills on sm_90
# (ptxas -v: 40-93 registers forward, 48-78 backward).
_TILES = ((2048, 8), (1024, 4), (1024, 8))

# Setting -> (BLOCK_C, num_warps) chosen by timing, see _run_tuned.
_CHOSEN: dict[tuple, tuple[int, int]] = {}


def _candidates(channels: int, block_bins: int) -> list[tuple[int, int]]:
    """``(BLOCK_C, num_warps)`` for each tile of ``_TILES``, duplicates removed."""
    most = min(64, triton.next_power_of_2(max(channels, 1)))
    out = []
    for elements, warps in _TILES:
        block_c = min(max(elements // block_bins, 4), most)
        warps = min(warps, max(1, block_bins * block_c // 128))
        if (block_c, warps) not in out:
            out.append((block_c, warps))
    return out


def _samples_mode(sampling_ratio: int) -> int:
    """``SAMPLES``: the unrolled count, 0 for another fixed ratio, -1 for adaptive."""
    if sampling_ratio in _UNROLLED:
        return sampling_ratio
    return 0 if sampling_ratio > 0 else -1


def _run_tuned(kernel, num_rois: int, args: tuple, meta: dict, device, dtype, reset=None) -> None:
    """Launch ``kernel`` over ``(num_rois, channel blocks)`` with the fastest tile shape.

    On the first call for a setting (kernel, device, dtype, channels, output size, sampling,
    alignment; CUDA only) each candidate of :func:`_candidates` is timed on these very arguments
    (one warm-up launch, three timed); ``reset`` then restores the output buffer before the real
    launch (the backward kernel accumulates). Later calls reuse the choice.
    """
    channels = args[3]
    configs = _candidates(channels, meta["BLOCK_BINS"])
    key = (kernel.fn.__name__, str(device), dtype, channels)
    key += (meta["PH"], meta["PW"], meta["SAMPLES"], meta["ALIGNED"])

    def launch(config: tuple[int, int], times: int = 1) -> None:
        block_c, num_warps = config
        grid = (num_rois, triton.cdiv(channels, block_c))
        for _ in range(times):
            kernel[grid](*args, **meta, BLOCK_C=block_c, num_warps=num_warps, **_no_fp_fusion())

    if key not in _CHOSEN:
        if len(configs) == 1 or not _can_time(device):
            _CHOSEN[key] = configs[0]
        else:
            timings = []
            for config in configs:
                launch(config)  # compiles
                timings.append(_elapsed_ms(device, functools.partial(launch, config, 3)))
            _CHOSEN[key] = configs[timings.index(min(timings))]
            if reset is not None:
                reset()
    launch(_CHOSEN[key])


def _no_fp_fusion() -> dict[str, bool]:
    """Compile without contracting ``a * b + c`` (ours are explicit ``tl.fma``s); the
    interpreter computes in numpy and takes no compiler options."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return {}
    return {"enable_fp_fusion": False}


def _can_time(device: torch.device) -> bool:
    return device.type == "cuda"


def _elapsed_ms(device: torch.device, fn) -> float:
    """Milliseconds of GPU time ``fn`` takes on ``device``'s current stream."""
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def roi_align_forward_triton(
    input: Tensor,
    rois: Tensor,
    output_height: int,
    output_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """RoIAlign forward with the Triton kernel (no autograd). ``rois``: ``Tensor[K, 5]``."""
    num_rois = rois.shape[0]
    _, channels, height, width = input.shape
    out = torch.empty(
        (num_rois, channels, output_height, output_width), dtype=input.dtype, device=input.device
    )
    if out.numel() == 0:
        return out.zero_()
    features = input.detach().permute(0, 2, 3, 1).contiguous()  # (N, H, W, C)
    rois32 = rois.detach().to(torch.float32).contiguous()
    args = (features, rois32, out, channels, height, width, float(spatial_scale))
    args += (int(sampling_ratio),)
    meta = {
        "PH": output_height,
        "PW": output_width,
        "ALIGNED": bool(aligned),
        "SAMPLES": _samples_mode(sampling_ratio),
        "BLOCK_BINS": triton.next_power_of_2(output_height * output_width),
    }
    with _on_device(input.device):
        _run_tuned(_roi_align_kernel, num_rois, args, meta, input.device, input.dtype)
    return out


def roi_align_backward_triton(
    grad_output: Tensor,
    rois: Tensor,
    input_shape: tuple[int, int, int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    *,
    channels_last: bool = False,
) -> Tensor:
    """Gradient of RoIAlign with respect to its input, with the Triton kernel (no autograd).

    Args:
        grad_output: ``Tensor[K, C, PH, PW]``, the gradient of the output.
        rois: ``Tensor[K, 5]``, the regions of the forward pass.
        input_shape: ``(N, C, H, W)`` of the input.
        spatial_scale: as in the forward pass.
        sampling_ratio: as in the forward pass.
        aligned: as in the forward pass.
        channels_last: return the gradient in channels-last memory format (no copy).

    Returns:
        ``Tensor[N, C, H, W]`` in ``grad_output``'s dtype.
    """
    num_rois, channels, output_height, output_width = grad_output.shape
    batch, _, height, width = input_shape
    # Accumulated in float32 channels-last: the atomics of one sample hit contiguous channels.
    grad = torch.zeros(
        (batch, height, width, channels), dtype=torch.float32, device=grad_output.device
    )
    if num_rois > 0 and channels > 0 and height > 0 and width > 0:
        args = (grad_output.detach().contiguous(), rois.detach().to(torch.float32).contiguous())
        args += (grad, channels, height, width, float(spatial_scale), int(sampling_ratio))
        meta = {
            "PH": output_height,
            "PW": output_width,
            "ALIGNED": bool(aligned),
            "SAMPLES": _samples_mode(sampling_ratio),
            "BLOCK_BINS": triton.next_power_of_2(output_height * output_width),
        }
        with _on_device(grad.device):
            _run_tuned(
                _roi_align_backward_kernel,
                num_rois,
                args,
                meta,
                grad.device,
                grad_output.dtype,
                reset=grad.zero_,
            )
    grad = grad.permute(0, 3, 1, 2).to(grad_output.dtype)  # (N, C, H, W) view, channels-last
    return grad if channels_last else grad.contiguous()


def _on_device(device: torch.device):
    """Make ``device`` current while launching (Triton launches on the current CUDA device)."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


class _RoIAlignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, *args) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(rois)
        ctx.args = args
        ctx.input_shape = tuple(input.shape)
        ctx.input_dtype = input.dtype
        ctx.channels_last = not input.is_contiguous() and input.is_contiguous(
            memory_format=torch.channels_last
        )
        return roi_align_forward_triton(input, rois, *args)

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (rois,) = ctx.saved_tensors
        _, _, spatial_scale, sampling_ratio, aligned = ctx.args
        none = (None,) * (1 + len(ctx.args))
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the PyTorch implementation instead, whose
            # gradient graph supports higher derivatives (RoIAlign is linear in its input, so
            # the point it is evaluated at does not matter).
            from modernvision.ops.roi_align import roi_align_torch

            leaf = torch.zeros(
                ctx.input_shape, dtype=ctx.input_dtype, device=grad_output.device
            ).requires_grad_(True)
            out = roi_align_torch(leaf, rois, *ctx.args)
            (grad_input,) = torch.autograd.grad(out, leaf, grad_output, create_graph=True)
            return (grad_input, *none)
        grad_input = roi_align_backward_triton(
            grad_output,
            rois,
            ctx.input_shape,
            spatial_scale,
            sampling_ratio,
            aligned,
            channels_last=ctx.channels_last,
        )
        return (grad_input.to(ctx.input_dtype), *none)


def roi_align_triton(
    input: Tensor,
    rois: Tensor,
    output_height: int,
    output_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """Differentiable RoIAlign with Triton kernels for the forward and backward passes."""
    args = (output_height, output_width, spatial_scale, sampling_ratio, aligned)
    if input.requires_grad and torch.is_grad_enabled():
        return _RoIAlignFunction.apply(input, rois, *args)
    return roi_align_forward_triton(input, rois, *args)
