"""Greedy NMS on the GPU with two Triton kernels (the bit-mask scheme of torchvision's CUDA NMS).

1. ``_iou_mask_kernel``: for boxes sorted by descending score, word ``w`` of row ``i`` holds bit
   ``k`` set iff box ``64 w + k`` comes after box ``i`` and their IoU is ``> threshold`` (and,
   for batched NMS, their labels agree). Tiles left of the diagonal are never read and skipped.
2. ``_reduce_mask_kernel``: one program walks the rows in score order, 64 at a time: it resolves
   the 64 boxes of a word sequentially against the running "removed" bits, then ORs the rows of
   the boxes it kept into the removed words to their right. The result never leaves the GPU.

IoU is computed with fp-contraction disabled, in the same operations and order as torchvision's
CPU kernel, and compared against the largest float32 ``<= threshold``, so the kept set equals
torchvision's CPU result for the same inputs. torchvision's CUDA kernel compares against
``float(threshold)`` and may contract multiply-adds into FMAs, so on float boxes whose IoU lies
within one float32 ulp of the threshold the two CUDA implementations can disagree.

The host-side alternative (copy the mask to the CPU and scan it there, as torchvision did
until 0.20) is kept for benchmarking as ``reduce="host"``.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from modernvision.ops._nms_cpu import float32_threshold

WORD = 64


@triton.jit
def _bit_or(a, b):
    return a | b


@triton.jit(do_not_specialize=["n", "n_words"])
def _iou_mask_kernel(
    boxes_ptr,  # (n, 4) float32, sorted by descending score, contiguous
    labels_ptr,  # (n,) int64 (read only when HAS_LABELS)
    mask_ptr,  # (n, n_words) int64
    n,
    n_words,
    threshold,
    HAS_LABELS: tl.constexpr,
):
    pid_row = tl.program_id(0)
    pid_word = tl.program_id(1)
    # Row block pid_row only ever reads words >= pid_row: the tiles left of the diagonal are idle.
    if pid_word >= pid_row:
        rows = pid_row * 64 + tl.arange(0, 64)
        cols = pid_word * 64 + tl.arange(0, 64)
        row_ok = rows < n
        col_ok = cols < n
        ax1 = tl.load(boxes_ptr + rows * 4 + 0, mask=row_ok, other=0.0)
        ay1 = tl.load(boxes_ptr + rows * 4 + 1, mask=row_ok, other=0.0)
        ax2 = tl.load(boxes_ptr + rows * 4 + 2, mask=row_ok, other=1.0)
        ay2 = tl.load(boxes_ptr + rows * 4 + 3, mask=row_ok, other=1.0)
        bx1 = tl.load(boxes_ptr + cols * 4 + 0, mask=col_ok, other=0.0)
        by1 = tl.load(boxes_ptr + cols * 4 + 1, mask=col_ok, other=0.0)
        bx2 = tl.load(boxes_ptr + cols * 4 + 2, mask=col_ok, other=1.0)
        by2 = tl.load(boxes_ptr + cols * 4 + 3, mask=col_ok, other=1.0)
        area_a = (ax2 - ax1) * (ay2 - ay1)
        area_b = (bx2 - bx1) * (by2 - by1)
        left = tl.maximum(ax1[:, None], bx1[None, :])
        top = tl.maximum(ay1[:, None], by1[None, :])
        right = tl.minimum(ax2[:, None], bx2[None, :])
        bottom = tl.minimum(ay2[:, None], by2[None, :])
        w = tl.maximum(right - left, 0.0)
        h = tl.maximum(bottom - top, 0.0)
        inter = w * h
        iou = inter / (area_a[:, None] + area_b[None, :] - inter)
        hit = (iou > threshold) & (cols[None, :] > rows[:, None]) & col_ok[None, :]
        if HAS_LABELS:
            la = tl.load(labels_ptr + rows, mask=row_ok, other=0)
            lb = tl.load(labels_ptr + cols, mask=col_ok, other=-1)
            hit = hit & (la[:, None] == lb[None, :])
        bit = tl.full([64], 1, tl.int64) << tl.arange(0, 64).to(tl.int64)
        word = tl.reduce(tl.where(hit, bit[None, :], 0), 1, _bit_or)
        tl.store(mask_ptr + rows.to(tl.int64) * n_words + pid_word, word, mask=row_ok)


@triton.jit(do_not_specialize=["n", "n_words"])
def _reduce_mask_kernel(
    mask_ptr,  # (n, n_words) int64
    removed_ptr,  # (n_words,) int64 scratch, zero-initialised
    keep_ptr,  # (n,) int8 output: 1 where kept
    n,
    n_words,
    WORD_BLOCK: tl.constexpr,
):
    lanes = tl.arange(0, 64)
    word_lanes = tl.arange(0, WORD_BLOCK)
    one = tl.full([], 1, tl.int64)
    for nb in range(0, n_words):
        current = tl.load(removed_ptr + nb, volatile=True)
        kept_bits = tl.zeros([], tl.int64)
        # The 64 boxes of word nb, in score order: a box is kept unless an earlier kept box
        # removed it; keeping it removes the later boxes of this word that it overlaps.
        for t in tl.static_range(64):
            i = nb * 64 + t
            valid = i < n
            row_word = tl.load(mask_ptr + i.to(tl.int64) * n_words + nb, mask=valid, other=0)
            kept = (((current >> t) & 1) == 0) & valid
            current = tl.where(kept, current | row_word, current)
            kept_bits = tl.where(kept, kept_bits | (one << t), kept_bits)
        rows = nb * 64 + lanes
        row_kept = ((kept_bits >> lanes.to(tl.int64)) & 1) != 0
        tl.store(keep_ptr + rows, row_kept.to(tl.int8), mask=rows < n)
        for w0 in range(nb + 1, n_words, WORD_BLOCK):
            words = w0 + word_lanes
            word_ok = words < n_words
            tile = tl.load(
                mask_ptr + rows.to(tl.int64)[:, None] * n_words + words[None, :],
                mask=row_kept[:, None] & word_ok[None, :],
                other=0,
            )
            hits = tl.reduce(tile, 0, _bit_or)
            old = tl.load(removed_ptr + words, mask=word_ok, other=0, volatile=True)
            tl.store(removed_ptr + words, old | hits, mask=word_ok)
        tl.debug_barrier()


@numba.njit(nogil=True, cache=True)
def _scan_mask(mask: np.ndarray, n: int) -> np.ndarray:
    n_words = mask.shape[1]
    removed = np.zeros(n_words, np.uint64)
    keep = np.empty(n, np.int64)
    num_kept = 0
    for i in range(n):
        nb = i >> 6
        if (removed[nb] >> np.uint64(i & 63)) & np.uint64(1):
            continue
        keep[num_kept] = i
        num_kept += 1
        for j in range(nb, n_words):
            removed[j] |= mask[i, j]
    return keep[:num_kept]


def iou_mask(sorted_boxes: Tensor, labels: Tensor | None, threshold: float) -> Tensor:
    """The ``(n, ceil(n / 64))`` int64 suppression bit mask of score-sorted float32 boxes."""
    n = sorted_boxes.shape[0]
    n_words = triton.cdiv(n, WORD)
    mask = torch.empty((n, n_words), dtype=torch.int64, device=sorted_boxes.device)
    has_labels = labels is not None
    labels_arg = labels.contiguous() if has_labels else mask
    _iou_mask_kernel[(n_words, n_words)](
        sorted_boxes,
        labels_arg,
        mask,
        n,
        n_words,
        float(float32_threshold(threshold)),
        HAS_LABELS=has_labels,
        **_no_fp_fusion(),
    )
    return mask


def nms_sorted_triton(
    sorted_boxes: Tensor, labels: Tensor | None, threshold: float, *, reduce: str = "device"
) -> Tensor:
    """Positions kept by greedy NMS of float32 boxes sorted by descending score.

    Args:
        sorted_boxes: ``Tensor[N, 4]`` float32, contiguous, sorted by descending score.
        labels: ``Tensor[N]`` int64 in the same order, or ``None`` for a single class.
        threshold: IoU above which a later box is suppressed.
        reduce: ``"device"`` scans the mask on the GPU; ``"host"`` copies it to the CPU.

    Returns:
        ``Tensor[K]`` int64 positions into ``sorted_boxes``, ascending, on its device.
    """
    n = sorted_boxes.shape[0]
    mask = iou_mask(sorted_boxes, labels, threshold)
    if reduce == "host":
        rows = _scan_mask(mask.cpu().numpy().view(np.uint64), n)
        return torch.from_numpy(rows).to(sorted_boxes.device)
    n_words = mask.shape[1]
    removed = torch.zeros(n_words, dtype=torch.int64, device=mask.device)
    keep = torch.empty(n, dtype=torch.int8, device=mask.device)
    _reduce_mask_kernel[(1,)](mask, removed, keep, n, n_words, WORD_BLOCK=64)
    return torch.nonzero(keep, as_tuple=True)[0]


def _no_fp_fusion() -> dict[str, bool]:
    # The interpreter computes in numpy (no contraction) and does not take compiler options.
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return {}
    return {"enable_fp_fusion": False}
