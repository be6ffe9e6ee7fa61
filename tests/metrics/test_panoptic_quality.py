"""Panoptic quality on hand-built images with hand-computed numbers (Kirillov et al. 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modernvision.metrics import PanopticImage, PanopticQuality, panoptic_quality

PERSON, CAR, SKY = 1, 2, 3
CATEGORIES = {PERSON: True, CAR: True, SKY: False}


def paint(rects: dict[int, tuple[slice, slice]]) -> np.ndarray:
    m = np.zeros((10, 10), dtype=np.int64)
    for sid, (rows, cols) in rects.items():
        m[rows, cols] = sid
    return m


def image_one() -> tuple[PanopticImage, PanopticImage]:
    """Two people and the sky, whose last row is void in the ground truth.

    p1 (20 px) inside g1 (25 px): IoU 0.8. p2 (30 px) covers g2 (25 px): IoU 25/30.
    p3 (50 px) covers g3 (40 px) and the 10 void px, which leave the union: IoU 40/40 = 1.
    """
    gt = PanopticImage(
        paint(
            {
                1: (slice(0, 5), slice(0, 5)),
                2: (slice(0, 5), slice(5, 10)),
                3: (slice(5, 9), slice(0, 10)),
            }
        ),
        [
            {"id": 1, "category_id": PERSON},
            {"id": 2, "category_id": PERSON},
            {"id": 3, "category_id": SKY},
        ],
    )
    pred = PanopticImage(
        paint(
            {
                7: (slice(0, 5), slice(0, 4)),
                8: (slice(0, 5), slice(4, 10)),
                9: (slice(5, 10), slice(0, 10)),
            }
        ),
        [
            {"id": 7, "category_id": PERSON},
            {"id": 8, "category_id": PERSON},
            {"id": 9, "category_id": SKY},
        ],
    )
    return pred, gt


def image_two() -> tuple[PanopticImage, PanopticImage]:
    """False positives and negatives, a crowd region and void.

    g1 car (16 px), g2 car crowd (16 px), g3 person (16 px); everything else void.
    p1 car = half of g1: IoU exactly 0.5, not a match -> FP car, and g1 is an FN car.
    p2 car covers the crowd and 4 void px: unmatched but all crowd/void -> not an FP.
    p3 person, 12 px inside g3: IoU 0.75 -> TP.
    p4 person entirely on void -> not an FP.
    p5 person on the other half of g1 (a car): unmatched, no void -> FP person.
    """
    gt = PanopticImage(
        paint(
            {
                1: (slice(0, 4), slice(0, 4)),
                2: (slice(0, 4), slice(6, 10)),
                3: (slice(6, 10), slice(0, 4)),
            }
        ),
        [
            {"id": 1, "category_id": CAR, "iscrowd": 0},
            {"id": 2, "category_id": CAR, "iscrowd": 1},
            {"id": 3, "category_id": PERSON, "iscrowd": 0},
        ],
    )
    pred = PanopticImage(
        paint(
            {
                1: (slice(0, 4), slice(0, 2)),
                2: (slice(0, 4), slice(5, 10)),
                3: (slice(6, 10), slice(0, 3)),
                4: (slice(6, 10), slice(6, 10)),
                5: (slice(0, 4), slice(2, 4)),
            }
        ),
        [
            {"id": i, "category_id": c}
            for i, c in [(1, CAR), (2, CAR), (3, PERSON), (4, PERSON), (5, PERSON)]
        ],
    )
    return pred, gt


def test_image_one_all_matched():
    pred, gt = image_one()
    r = panoptic_quality(pred, gt, CATEGORIES)
    person = r.per_class[PERSON]
    assert (person.tp, person.fp, person.fn) == (2, 0, 0)
    assert person.pq == pytest.approx((0.8 + 25 / 30) / 2)
    assert person.sq == pytest.approx((0.8 + 25 / 30) / 2)
    assert person.rq == 1.0
    assert r.per_class[SKY].pq == 1.0  # void pixels of the prediction do not count
    assert math.isnan(r.per_class[CAR].pq) and r.per_class[CAR].n == 0
    assert r.things.pq == pytest.approx(person.pq) and r.things.n == 1
    assert r.stuff.pq == 1.0 and r.stuff.n == 1
    assert r.all.pq == pytest.approx((person.pq + 1.0) / 2)


def test_image_two_fp_fn_crowd_and_void():
    pred, gt = image_two()
    r = panoptic_quality(
        [pred], [gt], [{"id": k, "isthing": int(v)} for k, v in CATEGORIES.items()]
    )
    car, person = r.per_class[CAR], r.per_class[PERSON]
    assert (car.tp, car.fp, car.fn) == (0, 1, 1)
    assert car.pq == car.sq == car.rq == 0.0
    assert (person.tp, person.fp, person.fn) == (1, 1, 0)
    assert person.sq == pytest.approx(0.75)
    assert person.rq == pytest.approx(1 / 1.5)
    assert person.pq == pytest.approx(0.75 / 1.5)
    assert person.pq == pytest.approx(person.sq * person.rq)
    assert r.all.pq == pytest.approx(0.25) and r.all.n == 2
    assert r.all.sq == pytest.approx(0.375)
    assert r.all.rq == pytest.approx(1 / 3)
    assert math.isnan(r.stuff.pq) and r.stuff.n == 0


def test_void_is_removed_from_the_union():
    gt = PanopticImage(paint({1: (slice(0, 4), slice(0, 4))}), [{"id": 1, "category_id": PERSON}])
    # 24 px: the 16 of the person plus 8 void px -> IoU 16 / (24 + 16 - 16 - 8) = 1.
    pred = PanopticImage(paint({5: (slice(0, 4), slice(0, 6))}), [{"id": 5, "category_id": PERSON}])
    assert panoptic_quality(pred, gt, CATEGORIES).per_class[PERSON].pq == 1.0


def test_accumulating_images_sums_counts():
    (p1, g1), (p2, g2) = image_one(), image_two()
    metric = PanopticQuality(CATEGORIES)
    metric.update(p1, g1)
    metric.update((torch.from_numpy(p2.id_map), p2.segments), (g2.id_map, g2.segments))
    r = metric.compute()
    person = r.per_class[PERSON]
    iou = 0.8 + 25 / 30 + 0.75
    assert (person.tp, person.fp, person.fn) == (3, 1, 0)
    assert person.pq == pytest.approx(iou / 3.5)
    assert person.sq == pytest.approx(iou / 3)
    assert person.rq == pytest.approx(3 / 3.5)
    assert r.all.n == 3  # person, car, sky
    assert r.all.pq == pytest.approx((iou / 3.5 + 0.0 + 1.0) / 3)


def test_bad_inputs():
    pred, gt = image_one()
    with pytest.raises(ValueError, match="not in segments"):
        panoptic_quality(PanopticImage(pred.id_map, pred.segments[:2]), gt, CATEGORIES)
    with pytest.raises(ValueError, match="unknown category_id"):
        panoptic_quality(pred, gt, {PERSON: True})
    with pytest.raises(ValueError, match="differ in shape"):
        panoptic_quality(PanopticImage(pred.id_map[:5], pred.segments), gt, CATEGORIES)


def test_merge_of_shards_equals_one_pass():
    (p1, g1), (p2, g2) = image_one(), image_two()
    whole = PanopticQuality(CATEGORIES)
    whole.update(p1, g1)
    whole.update(p2, g2)
    first, second = PanopticQuality(CATEGORIES), PanopticQuality(CATEGORIES)
    first.update(p1, g1)
    second.update(p2, g2)
    first.merge(second)  # what the panoptic evaluator does with every rank's metric
    merged, expected = first.compute(), whole.compute()
    assert merged.all.pq == pytest.approx(expected.all.pq)
    for cat in CATEGORIES:
        a, b = merged.per_class[cat], expected.per_class[cat]
        assert (a.tp, a.fp, a.fn) == (b.tp, b.fp, b.fn)
        assert a.pq == pytest.approx(b.pq) or (math.isnan(a.pq) and math.isnan(b.pq))
    with pytest.raises(ValueError, match="same categories"):
        first.merge(PanopticQuality({PERSON: True}))
