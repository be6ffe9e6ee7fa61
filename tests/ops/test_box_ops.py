"""Box utilities against torchvision.ops on random boxes, plus gradcheck and error cases."""

import pytest
import torch
import torchvision

from modernvision import ops
from modernvision._errors import InvalidArgumentError

FORMATS = ("xyxy", "xywh", "cxcywh")


def random_boxes(n: int, *, seed: int, dtype=torch.float32, lead=()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(*lead, n, 2, generator=g, dtype=torch.float64) * 100
    wh = torch.rand(*lead, n, 2, generator=g, dtype=torch.float64) * 50
    return torch.cat([xy, xy + wh], dim=-1).to(dtype)


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_matches_torchvision(in_fmt, out_fmt):
    xyxy = random_boxes(50, seed=1, dtype=torch.float64, lead=(3,))
    boxes = torchvision.ops.box_convert(xyxy, "xyxy", in_fmt)
    ours = ops.box_convert(boxes, in_fmt, out_fmt)
    torch.testing.assert_close(ours, torchvision.ops.box_convert(boxes, in_fmt, out_fmt))
    torch.testing.assert_close(ops.box_convert(ours, out_fmt, in_fmt), boxes)
    assert ours.data_ptr() != boxes.data_ptr()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.float16])
def test_box_area_and_iou_match_torchvision(fmt, dtype):
    for seed in range(3):
        a = torchvision.ops.box_convert(random_boxes(30, seed=seed), "xyxy", fmt)
        b = torchvision.ops.box_convert(random_boxes(20, seed=seed + 10), "xyxy", fmt)
        a, b = a.to(dtype), b.to(dtype)
        expected_area = torchvision.ops.box_area(a, fmt=fmt)
        assert ops.box_area(a, fmt=fmt).dtype == expected_area.dtype
        torch.testing.assert_close(ops.box_area(a, fmt=fmt), expected_area)
        torch.testing.assert_close(
            ops.box_iou(a, b, fmt=fmt), torchvision.ops.box_iou(a, b, fmt=fmt), equal_nan=True
        )


def test_iou_and_giou_batched_and_non_contiguous():
    wide = random_boxes(40, seed=3, lead=(2,)).repeat_interleave(2, dim=-1)  # (2, 40, 8)
    a = wide[..., ::2]  # non-contiguous view of the boxes
    assert not a.is_contiguous()
    b = random_boxes(25, seed=4, lead=(2,))
    torch.testing.assert_close(ops.box_iou(a, b), torchvision.ops.box_iou(a, b))
    torch.testing.assert_close(
        ops.generalized_box_iou(a, b), torchvision.ops.generalized_box_iou(a, b)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generalized_box_iou_matches_torchvision(dtype):
    for seed in range(4):
        a, b = (
            random_boxes(33, seed=seed, dtype=dtype),
            random_boxes(17, seed=seed + 5, dtype=dtype),
        )
        ours = ops.generalized_box_iou(a, b)
        torch.testing.assert_close(ours, torchvision.ops.generalized_box_iou(a, b))
        assert ours.min() >= -1 and ours.max() <= 1


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    torch.testing.assert_close(ops.box_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))
    # GIoU of the touching pair: IoU 0, enclosing 4x2 = union -> 0; of the diagonal pair:
    # 1/7 - (9 - 7) / 9.
    torch.testing.assert_close(
        ops.generalized_box_iou(a, b), torch.tensor([[1 / 7 - 2 / 9, 0.0, 1.0]])
    )


def test_iou_gradcheck_float64():
    a = random_boxes(5, seed=7, dtype=torch.float64).requires_grad_()
    b = random_boxes(4, seed=8, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(ops.box_iou, (a, b))
    assert torch.autograd.gradcheck(ops.generalized_box_iou, (a, b))


def test_empty_inputs_give_empty_results():
    empty = torch.zeros((0, 4))
    b = random_boxes(3, seed=0)
    assert ops.box_iou(empty, b).shape == torchvision.ops.box_iou(empty, b).shape == (0, 3)
    assert ops.generalized_box_iou(b, empty).shape == (3, 0)
    assert ops.box_area(empty).shape == (0,)
    assert ops.box_convert(empty, "xyxy", "cxcywh").shape == (0, 4)
    assert ops.remove_small_boxes(empty, 1.0).shape == (0,)


def test_clip_and_remove_small_match_torchvision():
    boxes = random_boxes(60, seed=9) - 20
    torch.testing.assert_close(
        ops.clip_boxes_to_image(boxes, (70, 90)),
        torchvision.ops.clip_boxes_to_image(boxes, (70, 90)),
    )
    assert torch.equal(
        ops.remove_small_boxes(boxes, 20.0), torchvision.ops.remove_small_boxes(boxes, 20.0)
    )


def test_errors_name_the_argument():
    good = random_boxes(3, seed=0)
    with pytest.raises(ValueError, match=r"boxes1 must have shape \[\.\.\., 4\]"):
        ops.box_iou(torch.zeros(3, 5), good)
    with pytest.raises(ValueError, match="in_fmt must be one of"):
        ops.box_convert(good, "yxyx", "xyxy")
    with pytest.raises(TypeError, match="boxes must be a torch.Tensor"):
        ops.box_area([[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="do not broadcast"):
        ops.box_iou(random_boxes(3, seed=0, lead=(2,)), random_boxes(3, seed=1, lead=(3,)))


def test_box_values_are_validated_once_at_the_boundary():
    # The per-call ops check shapes only (reading values would sync with the device) ...
    flipped = torch.tensor([[0.0, 0, 1, 1], [5.0, 5, 2, 8]])
    assert ops.box_iou(flipped, flipped).shape == (2, 2)
    assert ops.box_convert(torch.tensor([[0.0, 0, -1, 1]]), "xywh", "xyxy").shape == (1, 4)
    # ... and validate_boxes, which data entry points call, names the box and the problem.
    with pytest.raises(InvalidArgumentError,
                       match=r"boxes2: box 1 \[5.0, 5.0, 2.0, 8.0\].*x2 >= x1"):
        ops.validate_boxes(flipped, "boxes2")
    with pytest.raises(InvalidArgumentError, match="w >= 0"):
        ops.validate_boxes(torch.tensor([[0.0, 0, -1, 1]]), fmt="xywh")
    with pytest.raises(InvalidArgumentError, match=r"x2 > x1"):
        ops.validate_boxes(torch.tensor([[2.0, 0, 2, 1]]), positive_size=True)
    with pytest.raises(InvalidArgumentError, match="outside the 10x6"):
        ops.validate_boxes(torch.tensor([[0.0, 0, 10, 6], [0.0, 0, 11, 6]]), image_size=(6, 10))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        ops.validate_boxes(torch.tensor([[0.0, 0, float("nan"), 6]]))
    with pytest.raises(InvalidArgumentError, match=r"box \(1, 0\)"):
        ops.validate_boxes(torch.tensor([[[0.0, 0, 1, 1]], [[1.0, 0, 0, 1]]]))
    good = random_boxes(5, seed=3)
    assert ops.validate_boxes(good) is good
    assert ops.validate_boxes(torch.zeros(0, 4), positive_size=True).shape == (0, 4)
