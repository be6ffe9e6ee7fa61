"""The CUDA (Triton) kernels, run on the CPU by Triton's interpreter, against torchvision.

``TRITON_INTERPRET=1`` must be set before torch imports Triton, so each check runs in a fresh
Python process. The interpreter executes the kernels' exact operations in numpy, which proves
their logic (bit masks, the on-device scan, RoIAlign's sampling, its atomic scatter) without a
GPU. One difference from a GPU: the interpreter's ``tl.fma`` rounds twice, so there the RoIAlign
kernels reproduce torchvision's CPU kernel bit for bit; with a single-rounding ``fma`` patched in
they reproduce torchvision's CUDA arithmetic (checked against a transcription of it below).
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

NMS_CHECK = textwrap.dedent(
    """
    import torch, torchvision
    from modernvision.ops._nms_triton import nms_sorted_triton

    SIZES = {sizes}
    for seed, n in enumerate(SIZES):
        g = torch.Generator().manual_seed(seed)
        boxes = torch.rand(n, 4, generator=g) * 100
        boxes[:, 2:] += boxes[:, :2]
        scores = torch.randint(0, 9, (n,), generator=g).float()  # ties
        labels = torch.randint(0, 3, (n,), generator=g)
        order = torch.sort(scores, stable=True, dim=0, descending=True)[1]
        for reduce, with_labels in {nms_modes}:
            for threshold in {thresholds}:
                sorted_labels = labels[order] if with_labels else None
                positions = nms_sorted_triton(boxes[order].contiguous(), sorted_labels,
                                              threshold, reduce=reduce)
                kept = order[positions]
                if with_labels:
                    expected = torchvision.ops.boxes._batched_nms_vanilla(
                        boxes, scores, labels, threshold)
                    assert torch.equal(kept.sort().values, expected.sort().values), n
                else:
                    assert torch.equal(kept, torchvision.ops.nms(boxes, scores, threshold)), n
    """
)

ROI_CHECK = textwrap.dedent(
    """
    import torch, torchvision
    from modernvision.ops import _roi_align_triton as kernels
    from modernvision.ops._roi_align_triton import roi_align_backward_triton, roi_align_triton

    def case(seed, channels, num_rois=6, height=11, width=13):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(2, channels, height, width, generator=g)
        xy = torch.rand(num_rois, 2, generator=g) * 30 - 4  # partly off the map
        wh = torch.rand(num_rois, 2, generator=g) * 25
        wh[::4] = 0.0  # empty regions
        batch = (torch.arange(num_rois) % 2).float()[:, None]
        return x, torch.cat([batch, xy, xy + wh], dim=1), g

    # Forward (bit for bit) and the backward kernel's gradient, against torchvision's CPU kernels.
    for seed, (output_size, ratio, aligned, channels) in enumerate({roi_cases}):
        x, rois, g = case(seed, channels)
        expected = torchvision.ops.roi_align(x, rois, output_size, 0.5, ratio, aligned)
        ours = roi_align_triton(x, rois, *output_size, 0.5, ratio, aligned)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
        grad_out = torch.randn(expected.shape, generator=g)
        ref = x.clone().requires_grad_()
        torchvision.ops.roi_align(ref, rois, output_size, 0.5, ratio, aligned).backward(grad_out)
        leaf = x.clone().requires_grad_()
        roi_align_triton(leaf, rois, *output_size, 0.5, ratio, aligned).backward(grad_out)
        torch.testing.assert_close(leaf.grad, ref.grad, atol=1e-5, rtol=1e-5)
        assert leaf.grad.is_contiguous()

    if {half}:  # float16 in and out, float32 arithmetic inside
        x, rois, g = case(11, 16)
        x16, rois16 = x.half(), rois.half()
        expected = torchvision.ops.roi_align(x16.float(), rois16.float(), 7, 0.5, 2, True)
        ours = roi_align_triton(x16, rois16, 7, 7, 0.5, 2, True)
        assert ours.dtype == torch.float16
        torch.testing.assert_close(ours, expected.half(), atol=0, rtol=0)
        grad_out = torch.randn(expected.shape, generator=g).half()
        ref = x16.float().requires_grad_()
        torchvision.ops.roi_align(ref, rois16.float(), 7, 0.5, 2, True).backward(grad_out.float())
        leaf = x16.clone().requires_grad_()
        roi_align_triton(leaf, rois16, 7, 7, 0.5, 2, True).backward(grad_out)
        assert leaf.grad.dtype == torch.float16
        torch.testing.assert_close(leaf.grad, ref.grad.half(), atol=1e-3, rtol=1e-3)

    # Channels-last input: same values, gradient returned channels-last.
    x, rois, g = case(7, 16)
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    ref = x.clone().requires_grad_()
    grad_out = torch.randn(rois.shape[0], 16, 3, 3, generator=g)
    roi_align_triton(x_cl, rois, 3, 3, 0.5, 2, True).backward(grad_out)
    torchvision.ops.roi_align(ref, rois, 3, 0.5, 2, True).backward(grad_out)
    assert x_cl.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x_cl.grad, ref.grad, atol=1e-5, rtol=1e-5)

    # Double backward (falls back to the PyTorch implementation): the gradient is linear in
    # grad_out, and d<grad_in, v>/d(grad_out) is RoIAlign applied to v.
    leaf = x.clone().requires_grad_()
    grad_out = grad_out.clone().requires_grad_()
    out = roi_align_triton(leaf, rois, 3, 3, 0.5, -1, False)
    (grad_in,) = torch.autograd.grad(out, leaf, grad_out, create_graph=True)
    v = torch.randn(x.shape, generator=g)
    (second,) = torch.autograd.grad((grad_in * v).sum(), grad_out)
    torch.testing.assert_close(second, torchvision.ops.roi_align(v, rois, 3, 0.5, -1, False),
                               atol=1e-5, rtol=1e-5)
    ref = x.clone().requires_grad_()
    torchvision.ops.roi_align(ref, rois, 3, 0.5, -1, False).backward(grad_out.detach())
    torch.testing.assert_close(grad_in.detach(), ref.grad, atol=1e-5, rtol=1e-5)

    # Tile selection by timing (CUDA only) with a CPU timer: the backward kernel accumulates,
    # so its buffer must be reset after the timed launches.
    import time
    kernels._can_time = lambda device: True
    def elapsed_ms(device, fn):
        start = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - start)
    kernels._elapsed_ms = elapsed_ms
    kernels._CHOSEN.clear()
    x, rois, g = case(3, 40, num_rois=3)
    grad_out = torch.randn(rois.shape[0], 40, 3, 3, generator=g)
    ref = x.clone().requires_grad_()
    torchvision.ops.roi_align(ref, rois, 3, 0.5, 1, True).backward(grad_out)
    grad = roi_align_backward_triton(grad_out, rois, tuple(x.shape), 0.5, 1, True)
    torch.testing.assert_close(grad, ref.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        roi_align_triton(x, rois, 3, 3, 0.5, 1, True),
        torchvision.ops.roi_align(x, rois, 3, 0.5, 1, True),
        atol=1e-6,
        rtol=0,
    )
    chosen = {{key[0]: value for key, value in kernels._CHOSEN.items()}}
    assert set(chosen) == {{"_roi_align_kernel", "_roi_align_backward_kernel"}}, chosen
    assert len(kernels._candidates(40, 16)) > 1
    assert all(v in kernels._candidates(40, 16) for v in chosen.values()), chosen
    """
)

# torchvision's CUDA kernel in numpy float32, operation for operation as nvcc compiled it (read off
# its sm_90 SASS): FFMA for the box start and ``start + p * bin``, IEEE divisions, the bilinear sum
# as fma(w4, v4, fma(w3, v3, fma(w2, v2, w1 * v1))), accumulated per sample, then / count.
GPU_FMA_CHECK = textwrap.dedent(
    """
    import numpy as np, torch, torchvision
    from triton.runtime import interpreter
    from modernvision.ops._roi_align_triton import roi_align_triton

    def fma(x, y, z):  # float64 holds the exact product of two float32s
        return (np.float64(x) * np.float64(y) + np.float64(z)).astype(np.float32)

    def single_rounding_fma(self, x, y, z):
        return interpreter.TensorHandle(fma(x.data, y.data, z.data), z.dtype.scalar)

    interpreter.InterpreterBuilder.create_fma = single_rounding_fma
    f32 = np.float32

    def torchvision_cuda(x, rois, size, scale, ratio, aligned):
        out = np.zeros((len(rois), x.shape[1], size, size), f32)
        height, width = x.shape[2:]
        for k, (b, x1, y1, x2, y2) in enumerate(rois):
            start = [fma(v, f32(scale), f32(-0.5 if aligned else 0.0)) for v in (y1, x1, y2, x2)]
            taps = []
            for axis, limit in ((0, height), (1, width)):
                length = f32(start[axis + 2] - start[axis])
                length = length if aligned else max(length, f32(1))
                bin_size = f32(length / f32(size))
                grid = ratio if ratio > 0 else int(np.ceil(bin_size))
                i = np.arange(grid, dtype=f32)
                p = np.arange(size, dtype=f32)
                offsets = ((i + f32(0.5)) * bin_size) / f32(grid)
                pos = fma(p, bin_size, start[axis])[:, None] + offsets
                inside = (pos >= -1) & (pos <= limit)
                pos = np.maximum(pos, f32(0))
                low = pos.astype(np.int64)
                edge = low >= limit - 1
                low = np.where(edge, limit - 1, low)
                high = np.where(edge, limit - 1, low + 1)
                frac = np.where(edge, low, pos).astype(f32) - low.astype(f32)
                taps.append((inside, low, high, frac, f32(1) - frac, grid))
            (iy_ok, y0, y1_, ly, hy, gh), (ix_ok, x0, x1_, lx, hx, gw) = taps
            img = x[int(b)]
            acc = np.zeros((x.shape[1], size, size), f32)
            for iy in range(gh):
                for ix in range(gw):
                    v1 = img[:, y0[:, iy, None], x0[None, :, ix]]
                    v2 = img[:, y0[:, iy, None], x1_[None, :, ix]]
                    v3 = img[:, y1_[:, iy, None], x0[None, :, ix]]
                    v4 = img[:, y1_[:, iy, None], x1_[None, :, ix]]
                    w = lambda a, b: (a[:, iy, None] * b[None, :, ix]).astype(f32)
                    val = (w(hy, hx) * v1).astype(f32)
                    val = fma(w(hy, lx), v2, val)
                    val = fma(w(ly, hx), v3, val)
                    val = fma(w(ly, lx), v4, val)
                    ok = iy_ok[:, iy, None] & ix_ok[None, :, ix]
                    acc = (acc + np.where(ok, val, f32(0))).astype(f32)
            out[k] = acc / f32(max(gh * gw, 1))
        return out

    # Detector-like features and boxes (stride 8), where positions reach ~100 feature pixels.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 100, 152, generator=g)
    size = 16 + torch.rand(60, 2, generator=g) * 240
    xy = torch.rand(60, 2, generator=g) * (torch.tensor([1216.0, 800.0]) - size)
    rois = torch.cat([torch.randint(0, 2, (60, 1), generator=g).float(), xy, xy + size], dim=1)
    moved = 0.0
    for ratio, aligned in ((2, True), (-1, False)):
        ours = roi_align_triton(x, rois, 7, 7, 0.125, ratio, aligned).numpy()
        model = torchvision_cuda(x.numpy(), rois.numpy(), 7, 0.125, ratio, aligned)
        np.testing.assert_array_equal(ours, model)
        cpu = torchvision.ops.roi_align(x, rois, 7, 0.125, ratio, aligned).numpy()
        moved = max(moved, float(np.abs(model - cpu).max()))
    assert moved > 1e-6, moved  # the patched fma did change the arithmetic
    """
)


def run_script(script: str) -> None:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    script += '\nprint("TRITON-INTERPRETER-OK")\n'
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRITON-INTERPRETER-OK" in result.stdout


def test_nms_kernels_under_interpreter():
    # Both scans (GPU, host) and both mask variants (with and without labels), once each.
    run_script(
        NMS_CHECK.format(
            sizes=[70], thresholds=(0.5,), nms_modes=[("device", False), ("host", True)]
        )
    )


def test_roi_align_kernels_under_interpreter():
    # Adaptive and unrolled sampling; 20 channels: a partial channel block.
    cases = [((7, 7), -1, False, 20), ((3, 3), 2, True, 8)]
    run_script(ROI_CHECK.format(roi_cases=cases, half=False))


@pytest.mark.slow
def test_nms_kernels_under_interpreter_larger():
    run_script(
        NMS_CHECK.format(
            sizes=[1, 64, 129, 300],
            thresholds=(0.0, 0.5),
            nms_modes=[
                (reduce, labels) for reduce in ("device", "host") for labels in (False, True)
            ],
        )
    )


@pytest.mark.slow
def test_roi_align_kernels_under_interpreter_larger():
    cases = [
        ((7, 7), 2, False, 20),
        ((14, 14), 0, True, 8),  # adaptive, 256 bins per tile
        ((1, 1), 3, False, 5),
        ((3, 5), 6, True, 33),  # a fixed ratio that is not unrolled
        ((2, 4), 1, False, 64),
    ]
    run_script(ROI_CHECK.format(roi_cases=cases, half=True))


@pytest.mark.slow
def test_roi_align_forward_with_gpu_fma_equals_torchvision_cuda_arithmetic():
    run_script(GPU_FMA_CHECK)


def _compile_h100(fn, signature: dict, constexprs: dict, aligned_args=(), **options):
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    names = list(signature)
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in aligned_args}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return compile(source, target=GPUTarget("cuda", 90, 32), options=options)


def test_triton_kernels_compile_for_h100():
    """Compile every kernel to an sm_90 cubin (no GPU needed): types and constexprs check out."""
    from modernvision.ops._nms_triton import _iou_mask_kernel, _reduce_mask_kernel
    from modernvision.ops._roi_align_triton import (
        _candidates,
        _roi_align_backward_kernel,
        _roi_align_kernel,
    )

    scalars = {
        "channels": "i32",
        "height": "i32",
        "width": "i32",
        "spatial_scale": "fp32",
        "sampling_ratio": "i32",
        **dict.fromkeys(["PH", "PW", "ALIGNED", "SAMPLES", "BLOCK_BINS", "BLOCK_C"], "constexpr"),
    }
    forward = {"features_ptr": "*fp32", "rois_ptr": "*fp32", "out_ptr": "*fp32", **scalars}
    backward = {"grad_out_ptr": "*fp32", "rois_ptr": "*fp32", "grad_in_ptr": "*fp32", **scalars}
    for (block_c, num_warps), samples, aligned in zip(_candidates(256, 64), (2, -1, 0), (1, 0, 1)):
        constants = {"PH": 7, "PW": 7, "ALIGNED": bool(aligned), "SAMPLES": samples}
        constants.update(BLOCK_BINS=64, BLOCK_C=block_c)
        for fn, signature in ((_roi_align_kernel, forward), (_roi_align_backward_kernel, backward)):
            # Pointers from torch and 256 channels are multiples of 16, specialised so at run
            # time: the taps' channel runs then load (and add) 4 floats at a time.
            kernel = _compile_h100(
                fn,
                signature,
                constants,
                list(signature)[:4],
                num_warps=num_warps,
                enable_fp_fusion=False,  # as launched
            )
            assert "cubin" in kernel.asm
            ptx = kernel.asm["ptx"]
            # IEEE divisions as in torchvision's kernel; Triton's `/` is the approximate
            # div.full.f32, which moved outputs by up to 7e-5 on an H100.
            assert "div.full" not in ptx and "div.rn.f32" in ptx
            if fn is _roi_align_kernel:
                assert "ld.global.v4" in ptx
            else:
                assert "atom.global" in ptx or "red.global" in ptx
    mask_signature = {
        "boxes_ptr": "*fp32",
        "labels_ptr": "*i64",
        "mask_ptr": "*i64",
        "n": "i32",
        "n_words": "i32",
        "threshold": "fp32",
        "HAS_LABELS": "constexpr",
    }
    for labels in (False, True):
        kernel = _compile_h100(
            _iou_mask_kernel, mask_signature, {"HAS_LABELS": labels}, enable_fp_fusion=False
        )
        assert "cubin" in kernel.asm
    reduce_signature = {
        "mask_ptr": "*i64",
        "removed_ptr": "*i64",
        "keep_ptr": "*i8",
        "n": "i32",
        "n_words": "i32",
        "WORD_BLOCK": "constexpr",
    }
    kernel = _compile_h100(_reduce_mask_kernel, reduce_signature, {"WORD_BLOCK": 64})
    assert "cubin" in kernel.asm
