"""NMS against torchvision.ops: identical kept indices (ties included), edge cases, errors."""

import pytest
import torch
import torchvision

from modernvision import ops


def torchvision_test_boxes(n: int, *, seed: int, dtype=torch.float32) -> torch.Tensor:
    """torchvision's own NMS test recipe: corners in [0, 100), sizes in [0, 100)."""
    g = torch.Generator().manual_seed(seed)
    boxes = torch.rand(n, 4, generator=g) * 100
    boxes[:, 2:] += boxes[:, :2]
    return boxes.to(dtype)


def sparse_boxes(n: int, *, seed: int, dtype=torch.float32) -> torch.Tensor:
    """Small boxes spread over a 1000 x 1000 image: most are kept (the O(N^2) regime)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 1000
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 60], 1).to(dtype)


def scores_for(n: int, *, seed: int, ties: bool, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1000)
    if ties:  # few distinct values: most scores are tied
        return torch.randint(0, 7, (n,), generator=g).to(dtype)
    return torch.rand(n, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_nms_equals_torchvision(dtype, ties):
    for seed, n in enumerate([1, 2, 17, 64, 65, 300, 1500]):
        for make in (torchvision_test_boxes, sparse_boxes):
            boxes = make(n, seed=seed, dtype=dtype)
            scores = scores_for(n, seed=seed, ties=ties, dtype=dtype)
            for threshold in (0.0, 0.3, 0.5, 0.7, 1.0):
                expected = torchvision.ops.nms(boxes, scores, threshold)
                assert torch.equal(ops.nms(boxes, scores, threshold), expected), (seed, n)


def test_nms_10000_boxes_equals_torchvision():
    boxes = torchvision_test_boxes(10_000, seed=0)
    scores = scores_for(10_000, seed=0, ties=False)
    assert torch.equal(ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))
    boxes = sparse_boxes(10_000, seed=1)
    assert torch.equal(ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


def test_nms_non_contiguous_inputs():
    boxes = torchvision_test_boxes(500, seed=3).repeat_interleave(2, dim=1)[:, ::2]
    scores = scores_for(1000, seed=3, ties=True)[::2]
    assert not boxes.is_contiguous() and not scores.is_contiguous()
    assert torch.equal(ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


def test_nms_hand_built_threshold_is_strict():
    boxes = torch.tensor([[0.0, 0, 2, 1], [0.0, 0, 1, 1], [5.0, 5, 6, 6], [0.0, 0, 2, 1]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.9])
    # box 1 has IoU exactly 0.5 with boxes 0 and 3 (kept at > 0.5, removed at < 0.5);
    # box 3 ties box 0 and comes second in the stable order; IoU(0, 3) = 1.
    assert ops.nms(boxes, scores, 0.5).tolist() == [0, 1, 2]
    assert ops.nms(boxes, scores, 0.49).tolist() == [0, 2]
    assert ops.nms(boxes, scores, 1.0).tolist() == [0, 3, 1, 2]
    assert torch.equal(ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


def test_nms_negative_threshold_and_degenerate_boxes():
    boxes = torchvision_test_boxes(200, seed=5)
    boxes[::7, 2:] = boxes[::7, :2]  # zero-area boxes: IoU 0/0 = NaN never suppresses
    scores = scores_for(200, seed=5, ties=True)
    for threshold in (-0.5, 0.0, 0.5):
        expected = torchvision.ops.nms(boxes, scores, threshold)
        assert torch.equal(ops.nms(boxes, scores, threshold), expected)


def test_nms_half_precision_is_computed_in_float32():
    boxes = torchvision_test_boxes(300, seed=6).half()
    scores = scores_for(300, seed=6, ties=False).half()
    expected = torchvision.ops.nms(boxes.float(), scores.float(), 0.5)
    assert torch.equal(ops.nms(boxes, scores, 0.5), expected)


@pytest.mark.parametrize("n", [40, 900, 2500])  # both of torchvision's batched regimes
@pytest.mark.parametrize("ties", [False, True])
def test_batched_nms_equals_torchvision(n, ties):
    for seed in range(3):
        boxes = torchvision_test_boxes(n, seed=seed)
        scores = scores_for(n, seed=seed, ties=ties)
        idxs = torch.randint(0, 6, (n,), generator=torch.Generator().manual_seed(seed))
        for threshold in (0.3, 0.5, 0.8):
            expected = torchvision.ops.batched_nms(boxes, scores, idxs, threshold)
            assert torch.equal(ops.batched_nms(boxes, scores, idxs, threshold), expected)


def test_batched_nms_never_crosses_categories():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [1.0, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert ops.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    # Negative coordinates break torchvision's offset trick; categories stay separate here.
    neg = boxes - 50
    assert ops.batched_nms(neg, scores, torch.tensor([0, 1, 1]), 0.5).tolist() == [0, 1]


def test_empty_inputs():
    empty = torch.zeros((0, 4))
    none = torch.zeros(0)
    for result in (ops.nms(empty, none, 0.5), ops.batched_nms(empty, none, none.long(), 0.5)):
        assert result.dtype == torch.int64 and result.shape == (0,)
    assert torch.equal(ops.nms(empty, none, 0.5), torchvision.ops.nms(empty, none, 0.5))


def test_errors():
    boxes = torchvision_test_boxes(4, seed=0)
    scores = torch.rand(4)
    with pytest.raises(ValueError, match=r"boxes must have shape \[N, 4\]"):
        ops.nms(boxes[None], scores, 0.5)
    with pytest.raises(ValueError, match="same length"):
        ops.nms(boxes, scores[:3], 0.5)
    with pytest.raises(ValueError, match="x2 >= x1"):
        ops.nms(boxes[:, [2, 1, 0, 3]], scores, 0.5)
    with pytest.raises(TypeError, match="floating point"):
        ops.nms(boxes.long(), scores, 0.5)
    bad = boxes.clone()
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        ops.nms(bad, scores, 0.5)
    with pytest.raises(TypeError, match="idxs must be an integer"):
        ops.batched_nms(boxes, scores, torch.zeros(4), 0.5)
    with pytest.raises(ValueError, match="idxs must have shape"):
        ops.batched_nms(boxes, scores, torch.zeros(3, dtype=torch.int64), 0.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_nms_equals_torchvision_cpu():
    for seed, n in enumerate([10, 1000, 10_000]):
        boxes = torchvision_test_boxes(n, seed=seed)
        scores = scores_for(n, seed=seed, ties=seed % 2 == 1)
        expected = torchvision.ops.nms(boxes, scores, 0.5)
        assert torch.equal(ops.nms(boxes.cuda(), scores.cuda(), 0.5).cpu(), expected)
        idxs = torch.randint(0, 5, (n,))
        expected = torchvision.ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        got = ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        assert torch.equal(got.sort().values, expected.sort().values)
