"""COCO RLE, polygon rasterisation and mask IoU against pycocotools.mask."""

import cv2
import numpy as np
import pycocotools.mask as cocomask
import pytest
import torch

from modernvision.metrics.masks import (
    bbox_to_rle,
    mask_iou,
    masks_to_rles,
    polygon_to_rle,
    polygons_to_mask,
    polygons_to_rle,
    rle_area,
    rle_counts,
    rle_counts_from_string,
    rle_counts_to_string,
    rle_decode,
    rle_encode,
    rle_merge,
    rle_to_bbox,
)


def _random_masks(rng, n=60):
    masks = []
    for k in range(n):
        h, w = (int(v) for v in rng.integers(1, 48, 2))
        kind = k % 4
        if kind == 0:
            m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        elif kind == 1:
            m = np.zeros((h, w), np.uint8)
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0:rng.integers(y0, h + 1), x0:rng.integers(x0, w + 1)] = 1
        elif kind == 2:
            m = np.zeros((h, w), np.uint8)
            cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                       int(rng.integers(1, 30)), 1, -1)
        else:
            m = np.ones((h, w), np.uint8) if k % 8 == 3 else np.zeros((h, w), np.uint8)
        masks.append(m)
    # A large mask: long runs, negative differences in the string code.
    big = np.zeros((700, 900), np.uint8)
    cv2.circle(big, (450, 350), 300, 1, -1)
    big[5:690, 2:4] = 1
    masks.append(big)
    return masks


def _ref_encode(m):
    return cocomask.encode(np.asfortranarray(m.astype(np.uint8)))


def test_hand_computed_rle():
    # Column-major [[0, 1], [1, 1]] -> 0, 1, 1, 1 -> one zero, then three ones.
    m = np.array([[0, 1], [1, 1]], np.uint8)
    rle = rle_encode(m)
    assert rle == {"size": [2, 2], "counts": "13"}
    assert rle_counts(rle).tolist() == [1, 3]
    # A mask whose first pixel is set starts with an empty zero-run.
    assert rle_counts(rle_encode(np.ones((2, 3), bool))).tolist() == [0, 6]
    assert rle_counts_from_string(rle_counts_to_string([3, 40, 2, 1, 600])) == [3, 40, 2, 1, 600]


def test_encode_decode_area_bbox_match_pycocotools():
    rng = np.random.default_rng(0)
    for m in _random_masks(rng):
        ref = _ref_encode(m)
        mine = rle_encode(m)
        assert mine["size"] == list(ref["size"])
        assert mine["counts"] == ref["counts"].decode("ascii")
        np.testing.assert_array_equal(rle_decode(mine), m)
        np.testing.assert_array_equal(rle_decode(ref), cocomask.decode(ref))  # bytes counts
        np.testing.assert_array_equal(cocomask.decode({"size": mine["size"],
                                                       "counts": mine["counts"].encode()}), m)
        assert rle_area(mine) == cocomask.area(ref)
        np.testing.assert_array_equal(rle_to_bbox(mine), cocomask.toBbox(ref))


def test_tensor_and_stack_inputs():
    rng = np.random.default_rng(1)
    stack = (rng.random((3, 9, 7)) < 0.4).astype(np.uint8)
    refs = cocomask.encode(np.asfortranarray(stack.transpose(1, 2, 0)))
    mine = masks_to_rles(torch.from_numpy(stack))
    assert [r["counts"] for r in mine] == [r["counts"].decode() for r in refs]


def test_uncompressed_counts():
    m = np.zeros((6, 5), np.uint8)
    m[1:4, 2:5] = 1
    counts = rle_counts(rle_encode(m)).tolist()
    unc = {"size": [6, 5], "counts": counts}
    np.testing.assert_array_equal(rle_decode(unc), m)
    assert cocomask.frPyObjects(unc, 6, 5)["counts"].decode() == rle_encode(m)["counts"]
    assert rle_area(unc) == 9


def test_polygons_match_pycocotools():
    rng = np.random.default_rng(2)
    for trial in range(150):
        h, w = (int(v) for v in rng.integers(5, 60, 2))
        k = int(rng.integers(3, 10))
        poly = rng.random(2 * k) * np.tile([w + 6, h + 6], k) - 3  # some points outside
        if trial % 5 == 0:
            poly = np.round(poly)  # integer vertices
        if trial % 7 == 0:
            poly = np.r_[poly[:2], poly]  # a repeated vertex
        poly = poly.tolist()
        ref = cocomask.frPyObjects([poly], h, w)[0]
        mine = polygon_to_rle(poly, h, w)
        assert mine["counts"] == ref["counts"].decode(), (poly, h, w)
    # several polygons of one object: the union, as COCO's annToRLE merges them
    polys = [(rng.random(8) * 30).tolist() for _ in range(3)]
    ref = cocomask.merge(cocomask.frPyObjects(polys, 32, 32))
    assert polygons_to_rle(polys, 32, 32)["counts"] == ref["counts"].decode()
    np.testing.assert_array_equal(polygons_to_mask(polys, 32, 32), cocomask.decode(ref))


def test_bbox_to_rle_and_merge():
    for box in ([2, 3, 10, 7], [0.5, 1.5, 20.2, 7.7], [-3, -3, 100, 100]):
        ref = cocomask.frPyObjects(np.array([box], float), 32, 48)[0]
        assert bbox_to_rle(box, 32, 48)["counts"] == ref["counts"].decode()
    rng = np.random.default_rng(3)
    masks = (rng.random((3, 20, 30)) < 0.5).astype(np.uint8)
    refs = cocomask.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    mine = masks_to_rles(masks)
    for intersect in (False, True):
        ref = cocomask.merge(refs, intersect=intersect)
        assert rle_merge(mine, intersect=intersect)["counts"] == ref["counts"].decode()


@pytest.mark.parametrize("crowd", [None, [0, 0, 0, 0], [1, 0, 1, 0]])
def test_mask_iou_matches_pycocotools(crowd):
    rng = np.random.default_rng(4)
    a = (rng.random((5, 30, 40)) < 0.3).astype(np.uint8)
    b = (rng.random((4, 30, 40)) < 0.5).astype(np.uint8)
    b[0] = 0  # an empty ground-truth mask
    a[1] = 0  # an empty detection
    ra = cocomask.encode(np.asfortranarray(a.transpose(1, 2, 0)))
    rb = cocomask.encode(np.asfortranarray(b.transpose(1, 2, 0)))
    ref = cocomask.iou(ra, rb, crowd if crowd is not None else [0] * 4)
    np.testing.assert_allclose(mask_iou(a, b, iscrowd=crowd), ref, rtol=0, atol=1e-12)
    t = mask_iou(torch.from_numpy(a), torch.from_numpy(b).bool(), iscrowd=crowd)
    assert isinstance(t, torch.Tensor) and t.shape == (5, 4)
    np.testing.assert_allclose(t.numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(mask_iou(masks_to_rles(a), masks_to_rles(b), iscrowd=crowd),
                               ref, atol=1e-12)


def test_mask_iou_empty_sets():
    assert mask_iou(np.zeros((0, 4, 4), bool), np.ones((3, 4, 4), bool)).shape == (0, 3)
    assert mask_iou(torch.ones(2, 4, 4, dtype=torch.bool), torch.zeros(0, 4, 4)).shape == (2, 0)
    one = [rle_encode(np.ones((4, 4), np.uint8))]
    assert mask_iou([], one).shape == (0, 1) and mask_iou(one, []).shape == (1, 0)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(TypeError, match="dtype"):
        rle_encode(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="sum to"):
        rle_decode({"size": [3, 3], "counts": [2, 3]})
    with pytest.raises(ValueError, match="invalid character"):
        rle_decode({"size": [3, 3], "counts": "0~"})
    with pytest.raises(ValueError, match="at least 3 points"):
        polygon_to_rle([0, 0, 5, 5], 10, 10)
    with pytest.raises(ValueError, match="same \\[H, W\\]"):
        mask_iou(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 5), bool))
    with pytest.raises(ValueError, match="one flag per"):
        mask_iou(np.zeros((1, 4, 4), bool), np.zeros((2, 4, 4), bool), iscrowd=[1])
