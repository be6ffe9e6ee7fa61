"""Detection losses against torch / torchvision and the papers' formulas."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from modernvision import losses, ops


def logits_and_targets(shape, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    targets = (torch.rand(*shape, generator=g) < 0.3).to(torch.float64)
    return logits, targets


@pytest.mark.parametrize("beta", [0.0, 1 / 9, 1.0, 2.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_smooth_l1_equals_torch(beta, reduction):
    x, y = torch.randn(50, 4, dtype=torch.float64), torch.randn(50, 4, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = losses.smooth_l1_loss(x1, y, beta=beta, reduction=reduction)
    expected = F.smooth_l1_loss(x2, y, beta=beta, reduction=reduction)
    torch.testing.assert_close(ours, expected)
    ours.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_smooth_l1_hand_computed_and_errors():
    x = torch.tensor([0.5, 2.0])
    # Fast R-CNN eq. 3: 0.5 * 0.25 and 2 - 0.5.
    assert losses.smooth_l1_loss(x, torch.zeros(2), reduction="none").tolist() == [0.125, 1.5]
    with pytest.raises(ValueError, match="same shape"):
        losses.smooth_l1_loss(x, torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        losses.smooth_l1_loss(x, x, reduction="avg")


@pytest.mark.parametrize("alpha", [0.25, 0.5, -1, None])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_focal_loss_equals_torchvision(alpha, gamma, reduction):
    logits, targets = logits_and_targets((8, 5, 3), seed=int(gamma * 10))
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = losses.sigmoid_focal_loss(a, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    tv_alpha = -1 if alpha is None else alpha
    expected = torchvision.ops.sigmoid_focal_loss(b, targets, tv_alpha, gamma, reduction)
    torch.testing.assert_close(ours, expected)
    ours.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_focal_loss_gamma_zero_is_bce_and_focal_never_exceeds_bce():
    logits, targets = logits_and_targets((200,), seed=3)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    focal = losses.sigmoid_focal_loss(a, targets, alpha=None, gamma=0.0)
    bce = F.binary_cross_entropy_with_logits(b, targets, reduction="none")
    torch.testing.assert_close(focal, bce)
    focal.sum().backward()
    bce.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        assert (losses.sigmoid_focal_loss(logits, targets, alpha=None, gamma=gamma) <= bce).all()


def test_focal_loss_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="alpha must be in"):
        losses.sigmoid_focal_loss(x, x, alpha=1.5)
    with pytest.raises(ValueError, match="same shape"):
        losses.sigmoid_focal_loss(x, torch.zeros(4))


def random_pairs(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, 2, generator=g, dtype=dtype) * 50
    wh = torch.rand(n, 2, 2, generator=g, dtype=dtype) * 30 + 1
    boxes = torch.cat([xy, xy + wh], dim=-1)
    return boxes[:, 0], boxes[:, 1]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_giou_loss_equals_torchvision(reduction):
    for seed in range(3):
        a, b = random_pairs(64, seed)
        x1, x2 = a.clone().requires_grad_(), a.clone().requires_grad_()
        ours = losses.generalized_box_iou_loss(x1, b, reduction=reduction)
        expected = torchvision.ops.generalized_box_iou_loss(x2, b, reduction=reduction)
        torch.testing.assert_close(ours, expected)
        ours.sum().backward()
        expected.sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad)
        # GIoU loss is 1 - GIoU of the diagonal of the pairwise matrix.
        giou = ops.generalized_box_iou(a, b).diagonal()
        torch.testing.assert_close(
            losses.generalized_box_iou_loss(a, b), 1 - giou, atol=1e-6, rtol=0
        )


def test_giou_loss_reference_values():
    # torchvision's test cases: identical boxes -> 0; disjoint side-by-side boxes -> 1.
    box1 = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    box2 = torch.tensor([0.0, 0.0, 1.0, 1.0])
    box3 = torch.tensor([0.0, 1.0, 1.0, 2.0])
    box4 = torch.tensor([1.0, 1.0, 2.0, 2.0])
    assert losses.generalized_box_iou_loss(box1, box1).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.generalized_box_iou_loss(box2, box2).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.generalized_box_iou_loss(box2, box3).item() == pytest.approx(1.0, abs=1e-6)
    # Corner-touching boxes: IoU 0, enclosing 4 vs union 2 -> GIoU -0.5, loss 1.5.
    assert losses.generalized_box_iou_loss(box2, box4).item() == pytest.approx(1.5, abs=1e-6)
    empty = torch.zeros(0, 4)
    assert losses.generalized_box_iou_loss(empty, empty, reduction="mean").item() == 0.0
    # Values are not checked per call (a device sync); flipped boxes still give a finite loss.
    assert torch.isfinite(losses.generalized_box_iou_loss(box2, torch.tensor([1.0, 0.0, 0.0, 1.0])))


def centernet_reference(logits, heatmap, a=2.0, b=4.0):
    """Eq. (1) of Objects as Points, one cell at a time."""
    total, num = 0.0, 0
    for x, y in zip(logits.flatten().tolist(), heatmap.flatten().tolist()):
        p = 1 / (1 + math.exp(-x))
        if y == 1:
            total += (1 - p) ** a * math.log(p)
            num += 1
        else:
            total += (1 - y) ** b * p**a * math.log(1 - p)
    return -total / max(num, 1)


def test_centernet_focal_loss_equals_the_paper_formula():
    g = torch.Generator().manual_seed(0)
    heatmap = torch.zeros(2, 3, 12, 16, dtype=torch.float64)
    for b, c, x, y, r in [(0, 0, 3, 4, 2), (0, 0, 5, 5, 1), (0, 2, 15, 0, 3), (1, 1, 8, 6, 2)]:
        ops.draw_gaussian(heatmap[b, c], (x, y), r)
    logits = torch.randn(heatmap.shape, generator=g, dtype=torch.float64) * 2
    expected = centernet_reference(logits, heatmap)
    assert losses.centernet_focal_loss(logits, heatmap).item() == pytest.approx(expected, rel=1e-9)
    # Without any centre the sum is normalised by 1.
    zero = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    logits = torch.randn(zero.shape, generator=g, dtype=torch.float64)
    assert losses.centernet_focal_loss(logits, zero).item() == pytest.approx(
        centernet_reference(logits, zero), rel=1e-9
    )


def test_centernet_focal_loss_hand_computed_and_gradient():
    # One centre predicted at p = 0.5, one background cell at y = 0.5 predicted at p = 0.5:
    # -(0.25 * log 0.5 + 0.5^4 * 0.25 * log 0.5) / 1.
    logits = torch.zeros(1, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    heatmap = torch.tensor([[[[1.0, 0.5]]]], dtype=torch.float64)
    loss = losses.centernet_focal_loss(logits, heatmap)
    assert loss.item() == pytest.approx(-(0.25 + 0.0625 * 0.25) * math.log(0.5))
    loss.backward()
    assert logits.grad[0, 0, 0, 0] < 0 < logits.grad[0, 0, 0, 1]  # raise the centre, lower the rest
    # Confident, correct predictions cost almost nothing; logits of +-40 stay finite.
    logits = torch.tensor([[[[40.0, -40.0]]]], dtype=torch.float64)
    assert 0 <= losses.centernet_focal_loss(logits, heatmap).item() < 1e-30
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.centernet_focal_loss(logits, heatmap * 2)
