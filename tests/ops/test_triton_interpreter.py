"""The CUDA (Triton) kernels, run on the CPU by Triton's interpreter, against torchvision.

``TRITON_INTERPRET=1`` must be set before torch imports Triton, so each check runs in a fresh
Python process. The interpreter executes the kernels' exact operations in numpy, which proves
their logic (bit masks, the on-device scan, RoIAlign's sampling) without a GPU.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHECK = textwrap.dedent(
    """
    import torch, torchvision
    from modernvision.ops._nms_triton import nms_sorted_triton
    from modernvision.ops._roi_align_triton import roi_align_triton

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

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 20, 11, 13, generator=g)
    xy = torch.rand(6, 2, generator=g) * 30 - 4
    rois = torch.cat([torch.tensor([[0.0], [1], [0], [1], [0], [1]]), xy,
                      xy + torch.rand(6, 2, generator=g) * 25], dim=1)
    for output_size, ratio, aligned in {roi_cases}:
        expected = torchvision.ops.roi_align(x, rois, output_size, 0.5, ratio, aligned)
        ours = roi_align_triton(x, rois, *output_size, 0.5, ratio, aligned)
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    leaf = x.clone().requires_grad_()
    ref = x.clone().requires_grad_()
    roi_align_triton(leaf, rois, 3, 3, 0.5, 2, True).square().sum().backward()
    torchvision.ops.roi_align(ref, rois, 3, 0.5, 2, True).square().sum().backward()
    torch.testing.assert_close(leaf.grad, ref.grad, atol=1e-5, rtol=1e-5)
    print("TRITON-INTERPRETER-OK")
    """
)


def run_check(sizes, thresholds, nms_modes, roi_cases) -> None:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    script = CHECK.format(
        sizes=sizes, thresholds=thresholds, nms_modes=nms_modes, roi_cases=roi_cases
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRITON-INTERPRETER-OK" in result.stdout


def test_triton_kernels_under_interpreter():
    # Both scans (GPU, host) and both mask variants (with and without labels), once each.
    run_check([70], (0.5,), [("device", False), ("host", True)], [((7, 7), -1, False)])


@pytest.mark.slow
def test_triton_kernels_under_interpreter_larger():
    run_check(
        [1, 64, 129, 300],
        (0.0, 0.5),
        [(reduce, labels) for reduce in ("device", "host") for labels in (False, True)],
        [((7, 7), -1, True), ((7, 7), 2, False), ((14, 14), 0, True), ((1, 1), 3, False)],
    )


def test_triton_kernels_compile_for_h100():
    """Compile every kernel to an sm_90 cubin (no GPU needed): types and constexprs check out."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    from modernvision.ops._nms_triton import _iou_mask_kernel, _reduce_mask_kernel
    from modernvision.ops._roi_align_triton import _roi_align_kernel

    target = GPUTarget("cuda", 90, 32)
    roi_signature = {
        "features_ptr": "*fp32",
        "rois_ptr": "*fp32",
        "out_ptr": "*fp32",
        "channels": "i32",
        "height": "i32",
        "width": "i32",
        "spatial_scale": "fp32",
        "sampling_ratio": "i32",
        **dict.fromkeys(["PH", "PW", "ALIGNED", "BLOCK_BINS", "BLOCK_C"], "constexpr"),
    }
    for aligned in (False, True):
        constants = {"PH": 7, "PW": 7, "ALIGNED": aligned, "BLOCK_BINS": 64, "BLOCK_C": 32}
        source = ASTSource(fn=_roi_align_kernel, signature=roi_signature, constexprs=constants)
        assert "cubin" in compile(source, target=target, options={"num_warps": 8}).asm
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
        source = ASTSource(
            fn=_iou_mask_kernel, signature=mask_signature, constexprs={"HAS_LABELS": labels}
        )
        assert "cubin" in compile(source, target=target, options={"enable_fp_fusion": False}).asm
    reduce_signature = {
        "mask_ptr": "*i64",
        "removed_ptr": "*i64",
        "keep_ptr": "*i8",
        "n": "i32",
        "n_words": "i32",
        "WORD_BLOCK": "constexpr",
    }
    source = ASTSource(
        fn=_reduce_mask_kernel, signature=reduce_signature, constexprs={"WORD_BLOCK": 64}
    )
    assert "cubin" in compile(source, target=target).asm
