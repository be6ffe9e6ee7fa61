"""Viola-Jones building blocks: integral images, Haar features, AdaBoost stumps, cascade I/O,
grouping and NMS, against brute force, hand-computed cases, OpenCV and torchvision."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
import torchvision

from modernvision.classic.viola_jones import (
    FEATURE_TYPES,
    AdaBoost,
    Cascade,
    DecisionTree,
    HaarFeatures,
    Stage,
    adaboost,
    best_stumps,
    box_iou,
    enumerate_features,
    feature_count,
    feature_values,
    greedy_nms,
    group_rectangles,
    integral_image,
    load_cascade,
    match_detections,
    rect_sum,
    resize_area,
    squared_integral_image,
    stump_threshold,
    tilted_integral_image,
    tilted_rect_sum,
    to_gray,
    window_integrals,
)
from modernvision.classic.viola_jones.train import classify_windows
from modernvision.data import load_photo

# ---------------------------------------------------------------------------------------------
# integral images


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (31, 44)])
def test_integral_images_match_naive_cumsum_and_opencv(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    naive = np.zeros((shape[0] + 1, shape[1] + 1), np.int64)
    for y in range(shape[0]):
        for x in range(shape[1]):
            naive[y + 1, x + 1] = img[: y + 1, : x + 1].astype(np.int64).sum()
    np.testing.assert_array_equal(integral_image(img), naive)
    s, sq, tilted = cv2.integral3(img, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    np.testing.assert_array_equal(integral_image(img), s)
    np.testing.assert_array_equal(squared_integral_image(img), sq)
    np.testing.assert_array_equal(tilted_integral_image(img), tilted)


def test_integral_image_does_not_overflow_where_uint32_would():
    # squared sums: 300 x 300 pixels of 255 -> 255^2 * 90,000 = 5.85e9 > 2^32
    img = np.full((300, 300), 255, np.uint8)
    exact_sq = 255**2 * 300 * 300
    assert exact_sq > 2**32
    with np.errstate(over="ignore"):
        wrapped = np.cumsum(
            np.cumsum(img.astype(np.uint32) ** 2, 0, dtype=np.uint32), 1, dtype=np.uint32
        )
    assert int(wrapped[-1, -1]) != exact_sq  # what a 32-bit table would hold
    assert int(squared_integral_image(img)[-1, -1]) == exact_sq
    # plain sums: 4200 x 4100 pixels of 255 -> 4.39e9 > 2^32
    big = np.full((4200, 4100), 255, np.uint8)
    ii = integral_image(big)
    assert ii.dtype == np.int64 and int(ii[-1, -1]) == 255 * 4200 * 4100 > 2**32
    assert rect_sum(ii, 4000, 4100, 100, 100) == 255 * 100 * 100


def test_rect_sums_take_four_lookups():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    ii = integral_image(img)
    tii = tilted_integral_image(img)
    for _ in range(200):
        x, y = rng.integers(0, 45), rng.integers(0, 35)
        w, h = rng.integers(0, 50 - x + 1), rng.integers(0, 40 - y + 1)
        assert rect_sum(ii, x, y, w, h) == int(img[y : y + h, x : x + w].astype(np.int64).sum())
    # tilted rectangle: top corner at the middle of pixel (x - 1, y)'s top edge, sides of w
    # (down-right) and h (down-left) pixel diagonals; brute force over pixel centres
    yy, xx = np.mgrid[0:40, 0:50]
    for x, y, w, h in [(20, 0, 5, 7), (25, 3, 10, 4), (12, 10, 1, 1), (30, 5, 8, 8)]:
        cx, cy = xx + 0.5 - (x - 0.5), yy + 0.5 - y
        u = cx + cy  # along the down-right side (scaled by 2)
        v = cy - cx  # along the down-left side
        inside = (u > 0) & (u < 2 * w) & (v > 0) & (v < 2 * h)
        assert tilted_rect_sum(tii, x, y, w, h) == int(img[inside].astype(np.int64).sum())
    with pytest.raises(ValueError, match="does not fit"):
        rect_sum(ii, 45, 0, 10, 1)


# ---------------------------------------------------------------------------------------------
# Haar features


def test_feature_enumeration_counts_162336_over_24x24():
    feats = enumerate_features((24, 24))
    assert len(feats) == 162_336 == feature_count((24, 24))
    per_type = {name: len(enumerate_features((24, 24), types=[name])) for name in FEATURE_TYPES}
    assert per_type == {
        "two_horizontal": 43_200,
        "two_vertical": 43_200,
        "three_horizontal": 27_600,
        "three_vertical": 27_600,
        "four": 20_736,
    }
    r, w = feats.rects, feats.weights
    used = w != 0
    assert np.all((r[..., 0] + r[..., 2] <= 24)[used])
    assert np.all((r[..., 1] + r[..., 3] <= 24)[used])
    assert set(np.unique(w[used]).tolist()) == {-1.0, 1.0}
    # every feature is distinct
    key = np.concatenate([r.reshape(len(r), -1), w.astype(np.int32)], 1)
    assert len(np.unique(key, axis=0)) == len(feats)
    # two- and four-rectangle features: as much white area as black
    two = enumerate_features((24, 24), types=["two_horizontal", "four"])
    area = (two.rects[..., 2] * two.rects[..., 3] * two.weights).sum(1)
    assert np.all(area == 0)


def test_feature_values_match_brute_force():
    rng = np.random.default_rng(2)
    patches = rng.integers(0, 256, (12, 24, 24), dtype=np.uint8)
    feats = enumerate_features((24, 24), position_step=5, size_step=3)
    tables, norm, ok = window_integrals(patches)
    vals = feature_values(feats, tables, norm, (24, 24))
    inner = patches[:, 1:23, 1:23].astype(np.float64)
    # variance normalisation over the 22x22 inner window: 1 / (area * std)
    expect_norm = 1 / np.sqrt(484 * (inner**2).sum((1, 2)) - inner.sum((1, 2)) ** 2)
    np.testing.assert_allclose(norm, expect_norm, rtol=1e-6)
    assert ok.all()
    for f in range(0, len(feats), 37):
        raw = np.zeros(len(patches))
        for (x, y, w, h), wt in zip(feats.rects[f], feats.weights[f]):
            raw += wt * patches[:, y : y + h, x : x + w].astype(np.int64).sum((1, 2))
        np.testing.assert_allclose(vals[f], raw * expect_norm, rtol=1e-5, atol=1e-7)
    # flat windows (std <= 10 grey levels) are refused, as OpenCV's setWindow does
    flat = np.full((1, 24, 24), 100, np.uint8)
    assert not window_integrals(flat)[2][0]


# ---------------------------------------------------------------------------------------------
# AdaBoost


def _brute_force_stump(v, y, w):
    best = np.inf
    cands = np.unique(v)
    thresholds = np.r_[cands[0] - 1, (cands[:-1] + cands[1:]) / 2, cands[-1] + 1]
    for t, p in itertools.product(thresholds, (1, -1)):
        pred = (v < t) if p > 0 else (v >= t)
        best = min(best, w[pred != y].sum())
    return best


def test_stump_search_is_optimal_against_brute_force():
    rng = np.random.default_rng(3)
    n_feat, n = 25, 40
    values = rng.integers(0, 12, (n_feat, n)).astype(np.float32)  # many ties
    values[3] = rng.normal(size=n)
    labels = rng.integers(0, 2, n).astype(bool)
    weights = rng.random(n)
    weights /= weights.sum()
    order = np.argsort(values, axis=1, kind="stable")
    err, split, pol = best_stumps(values, order, labels, weights)
    for f in range(n_feat):
        assert err[f] == pytest.approx(_brute_force_stump(values[f], labels, weights), abs=1e-12)
        # the reported split and polarity realise that error with a float32 threshold
        t = stump_threshold(values[f, order[f]], int(split[f]))
        assert np.sum(values[f] < t) == split[f]
        pred = (values[f] < t) if pol[f] > 0 else (values[f] >= t)
        assert weights[pred != labels].sum() == pytest.approx(err[f], abs=1e-12)


def test_adaboost_hand_computed_round():
    # one feature separating all but one sample: eps = weight of that sample
    values = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], np.float32)
    labels = np.array([1, 1, 0, 1, 0, 0], bool)
    booster = AdaBoost(values, labels)
    f, thr, pol, alpha, err = booster.step()
    # initial weights 1/(2l) = 1/6 each; best split "value < 2 -> face" misses sample 3
    assert (f, pol) == (0, 1) and float(thr) == 1.5
    assert err == pytest.approx(1 / 6)
    beta = (1 / 6) / (5 / 6)
    assert float(alpha) == pytest.approx(np.log(1 / beta), rel=1e-6)
    # correct samples get weight * beta, the wrong one keeps its weight
    np.testing.assert_allclose(
        booster.weights / booster.weights.max(), [beta, beta, beta, 1, beta, beta]
    )
    res = adaboost(values, labels, 3)
    assert res.threshold == pytest.approx(0.5 * res.alphas.astype(np.float64).sum())
    assert len(res.features) == 3


def test_adaboost_learns_a_separable_problem():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] > 0.3) ^ (x[:, 1] > -0.2)  # needs several stumps (xor-like corners)
    values = np.ascontiguousarray(x.T.astype(np.float32))
    res = adaboost(values, y, 1)
    train_err_1 = np.mean(res.predict(values) != y)
    res = adaboost(values, y, 40)
    assert np.mean(res.predict(values) != y) < train_err_1


# ---------------------------------------------------------------------------------------------
# cascade format


def _toy_cascade() -> Cascade:
    feats = enumerate_features((24, 24), position_step=8, size_step=6)
    stumps = [DecisionTree.stump(i, 0.01 * i - 0.05, 0.7, -0.3) for i in range(5)]
    tree = DecisionTree([5, 6], [0.0, 0.02], [1, 0], [-1, -2], [0.1, -0.4, 0.9])
    return Cascade(
        (24, 24),
        feats.subset(np.arange(7)),
        [Stage(-0.5, stumps[:2]), Stage(0.1, stumps[2:] + [tree])],
        {"note": "toy"},
    )


def test_cascade_json_round_trip(tmp_path):
    for cascade in (_toy_cascade(), load_cascade("opencv:frontalface_alt2")):
        path = cascade.save(tmp_path / "c.json")
        back = Cascade.load(path)
        assert back.window_size == cascade.window_size
        np.testing.assert_array_equal(back.features.rects, cascade.features.rects)
        np.testing.assert_array_equal(back.features.weights, cascade.features.weights)
        np.testing.assert_array_equal(back.features.tilted, cascade.features.tilted)
        assert len(back.stages) == len(cascade.stages)
        for a, b in zip(back.stages, cascade.stages):
            assert a.threshold == b.threshold
            for ta, tb in zip(a.weak, b.weak):
                for k in ("feature", "threshold", "left", "right", "leaves"):
                    np.testing.assert_array_equal(getattr(ta, k), getattr(tb, k))
        assert load_cascade(path).meta == cascade.meta
    with pytest.raises(ValueError, match="format"):
        Cascade.from_json({"stages": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        load_cascade(bad)
    with pytest.raises(FileNotFoundError):
        load_cascade(tmp_path / "missing.xml")
    with pytest.raises(KeyError, match="frontalface_default"):
        load_cascade("opencv:frontalface_defualt")


def test_windows_classified_as_the_cascade_says():
    # the detector kernel on ready-cut windows == the cascade evaluated by hand in numpy
    cascade = _toy_cascade()
    rng = np.random.default_rng(5)
    windows = rng.integers(0, 256, (64, 24, 24), dtype=np.uint8)
    accepted, _ = classify_windows(cascade, windows)
    tables, norm, ok = window_integrals(windows)
    vals = feature_values(cascade.features, tables, norm, (24, 24))
    expect = ok.copy()
    for stage in cascade.stages:
        score = np.zeros(len(windows))
        for tree in stage.weak:
            node = np.zeros(len(windows), np.int64)
            leaf = np.full(len(windows), -1)
            for _ in range(tree.num_nodes):
                active = leaf < 0
                f = tree.feature[node]
                below = vals[f, np.arange(len(windows))] < tree.threshold[node]
                nxt = np.where(below, tree.left[node], tree.right[node])
                done = active & (nxt <= 0)
                leaf[done] = -nxt[done]
                node = np.where(active & (nxt > 0), nxt, node)
            score += tree.leaves[leaf].astype(np.float64)
        expect &= score >= stage.threshold
    np.testing.assert_array_equal(accepted, expect)


# ---------------------------------------------------------------------------------------------
# grouping, NMS, evaluation


def test_group_rectangles_matches_opencv():
    # a chain: neighbours overlap within eps, the ends do not; one group by transitivity
    chain = np.array([[0, 0, 50, 50], [9, 0, 50, 50], [18, 0, 50, 50], [200, 0, 50, 50]])
    boxes, n = group_rectangles(chain, 2, eps=0.2)
    assert boxes.tolist() == [[9, 0, 50, 50]] and n.tolist() == [3]
    ref, ref_w = cv2.groupRectangles(chain.tolist(), 2, 0.2)
    assert np.asarray(ref).tolist() == boxes.tolist() and list(ref_w) == [3]
    rng = np.random.default_rng(6)
    for trial in range(30):
        centres = rng.integers(20, 200, (4, 2))
        rects = []
        for c in centres:
            for _ in range(rng.integers(1, 9)):
                s = int(rng.integers(20, 60))
                rects.append([c[0] + rng.integers(-4, 5), c[1] + rng.integers(-4, 5), s, s])
        rects = np.array(rects, np.int32)
        for mn in (0, 1, 2, 3, 5):
            ref, ref_w = cv2.groupRectangles(rects.tolist(), mn, 0.2)
            ours, ours_n = group_rectangles(rects, mn, eps=0.2)
            if mn <= 0:
                np.testing.assert_array_equal(ours, rects)
                continue
            ref = np.asarray(ref).reshape(-1, 4)
            assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, ref.tolist())), trial
            assert sorted(ours_n.tolist()) == sorted(np.asarray(ref_w).reshape(-1).tolist())


def test_greedy_nms_matches_torchvision():
    rng = np.random.default_rng(7)
    xy = rng.integers(0, 100, (80, 2))
    wh = rng.integers(5, 40, (80, 2))
    boxes = np.concatenate([xy, wh], 1)
    scores = rng.permutation(80).astype(np.float64)
    xyxy = torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float64)
    for iou in (0.1, 0.3, 0.5, 0.7):
        ref = torchvision.ops.nms(xyxy, torch.tensor(scores), iou).numpy()
        np.testing.assert_array_equal(greedy_nms(boxes, scores, iou), ref)
    ref_iou = torchvision.ops.box_iou(xyxy, xyxy).numpy()
    np.testing.assert_allclose(box_iou(boxes, boxes), ref_iou, rtol=1e-12)


def test_match_detections_hand_case():
    gt = np.array([[0, 0, 10, 10], [50, 50, 20, 20]])
    det = np.array([[1, 1, 10, 10], [0, 0, 10, 10], [100, 100, 5, 5], [52, 50, 20, 20]])
    m = match_detections(det, gt, 0.5)
    assert (m.tp, m.fp, m.fn) == (2, 2, 0)
    assert sorted((d, g) for d, g, _ in m.matches) == [(1, 0), (3, 1)]
    assert m.precision == 0.5 and m.recall == 1.0
    m = match_detections(np.zeros((0, 4)), gt)
    assert (m.tp, m.fp, m.fn) == (0, 0, 2)


# ---------------------------------------------------------------------------------------------
# conversions


def test_to_gray_is_opencvs_rgb2gray():
    rgb = load_photo("astronaut")
    np.testing.assert_array_equal(to_gray(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    with pytest.raises(ValueError, match="empty"):
        to_gray(np.zeros((0, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        to_gray(np.zeros((4, 4), np.float32))


def test_resize_area_matches_opencv_inter_area():
    rng = np.random.default_rng(8)
    img = rng.integers(0, 256, (25, 25), dtype=np.uint8)
    ref = cv2.resize(img, (24, 24), interpolation=cv2.INTER_AREA)
    diff = np.abs(resize_area(img, (24, 24)).astype(int) - ref.astype(int))
    assert diff.max() <= 1  # OpenCV's fixed-point rounding


def test_haar_features_validate_shapes():
    with pytest.raises(ValueError):
        HaarFeatures(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros(2, bool))
    with pytest.raises(KeyError, match="two_horizontal"):
        enumerate_features((24, 24), types=["two_horizontl"])
