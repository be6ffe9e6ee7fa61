"""COCO evaluation against pycocotools' COCOeval on random and adversarial sets."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from modernvision.metrics import COCO_STAT_NAMES, coco_evaluate, coco_evaluation

pycocotools = pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def reference(gt: dict, dets: list, iou_type: str = "bbox") -> COCOeval:
    """pycocotools on deep copies (it mutates its inputs), silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def random_set(seed: int, *, n_images: int = 40, tie_scores: bool = False) -> tuple[dict, list]:
    """Jittered and spurious boxes over objects of every size, crowds, images without objects,
    a category never predicted, one image with > 100 detections of one category, an object
    exactly on the 32x32 area edge, and annotations/detections pycocotools drops."""
    rng = np.random.default_rng(seed)
    cat_ids = sorted(rng.choice(np.arange(1, 100), 5, replace=False).tolist())
    img_ids = sorted(rng.choice(np.arange(1, 10**6), n_images, replace=False).tolist())
    predicted = cat_ids[:-1]

    def box() -> list[float]:
        side = np.exp(rng.uniform(np.log(4), np.log(400)))
        aspect = np.exp(rng.uniform(-0.7, 0.7))
        w, h = side * aspect, side / aspect
        return [round(float(v), 2) for v in (rng.uniform(0, 600), rng.uniform(0, 400), w, h)]

    anns, dets = [], []
    for k, img in enumerate(img_ids):
        for _ in range(0 if k % 7 == 3 else rng.poisson(4)):
            b = box()
            area = b[2] * b[3] * float(rng.uniform(0.5, 1.0))  # a mask area, not the box's
            if rng.random() < 0.05:
                b, area = [10.0, 10.0, 32.0, 32.0], 1024.0
            cat = int(rng.choice(cat_ids))
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img,
                    category_id=cat,
                    bbox=b,
                    area=area,
                    iscrowd=int(rng.random() < 0.08),
                )
            )
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                jit = [
                    b[0] + rng.normal(0, 0.1 * b[2]),
                    b[1] + rng.normal(0, 0.1 * b[3]),
                    b[2] * np.exp(rng.normal(0, 0.15)),
                    b[3] * np.exp(rng.normal(0, 0.15)),
                ]
                c = cat if rng.random() > 0.1 else int(rng.choice(cat_ids))
                dets.append(
                    dict(
                        image_id=img,
                        category_id=c if c in predicted else predicted[0],
                        bbox=[round(float(v), 2) for v in jit],
                        score=float(rng.random()),
                    )
                )
        for _ in range(rng.poisson(4)):
            dets.append(
                dict(
                    image_id=img,
                    category_id=int(rng.choice(predicted)),
                    bbox=box(),
                    score=float(rng.random()),
                )
            )
    for _ in range(130):
        dets.append(
            dict(
                image_id=img_ids[1], category_id=predicted[0], bbox=box(), score=float(rng.random())
            )
        )
    anns.append(
        dict(
            id=len(anns) + 1,
            image_id=img_ids[0],
            category_id=999,
            bbox=[1, 1, 5, 5],
            area=25.0,
            iscrowd=0,
        )
    )
    anns.append(
        dict(
            id=len(anns) + 1,
            image_id=-5,
            category_id=cat_ids[0],
            bbox=[1, 1, 5, 5],
            area=25.0,
            iscrowd=0,
        )
    )
    dets.append(dict(image_id=img_ids[0], category_id=998, bbox=[1, 1, 5, 5], score=0.5))
    if tie_scores:
        for d in dets:
            d["score"] = round(d["score"], 1)
    anns = [anns[i] for i in rng.permutation(len(anns))]
    gt = {
        "images": [{"id": i, "height": 480, "width": 640} for i in img_ids],
        "annotations": anns,
        "categories": [{"id": c, "name": str(c)} for c in cat_ids],
    }
    return gt, dets


def grid_set(seed: int) -> tuple[dict, list]:
    """Integer boxes on a coarse grid: exact IoU ties, IoUs exactly at thresholds, score ties,
    crowds, areas on the range edges, and (sometimes) a ground truth with id 0."""
    rng = np.random.default_rng(seed)
    n_img, cats = int(rng.integers(1, 6)), [1, 2, 3]
    gt = {"images": [{"id": i} for i in range(n_img)], "categories": [{"id": c} for c in cats]}
    anns, dets, next_id = [], [], int(rng.integers(0, 2))

    def box() -> list[int]:
        x, y = (rng.integers(0, 8, 2) * 4).tolist()
        w, h = (rng.integers(1, 5, 2) * rng.choice([4, 16, 40])).tolist()
        return [x, y, w, h]

    for i in range(n_img):
        for _ in range(rng.integers(0, 12)):
            b = box()
            area = b[2] * b[3] if rng.random() < 0.7 else float(rng.choice([1024, 9216, 100, 5000]))
            anns.append(
                dict(
                    id=next_id,
                    image_id=i,
                    category_id=int(rng.choice(cats)),
                    bbox=b,
                    area=float(area),
                    iscrowd=int(rng.random() < 0.2),
                )
            )
            next_id += 1
        for _ in range(rng.integers(1, 40)):
            dets.append(
                dict(
                    image_id=i,
                    category_id=int(rng.choice(cats)),
                    bbox=box(),
                    score=float(rng.integers(0, 5)) / 4,
                )
            )
    gt["annotations"] = anns
    return gt, dets


def assert_same(gt: dict, dets: list, iou_type: str = "bbox") -> None:
    ref = reference(gt, dets, iou_type)
    ours = coco_evaluation(gt, dets, iou_type=iou_type)
    got = np.array([ours.stats[name] for name in COCO_STAT_NAMES])
    np.testing.assert_allclose(got, ref.stats, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_sets_match_pycocotools(seed):
    gt, dets = random_set(seed, tie_scores=seed % 3 == 2)
    assert_same(gt, dets)


def test_grid_sets_with_ties_match_pycocotools():
    for seed in range(40):
        assert_same(*grid_set(seed))


def test_inputs_are_not_modified_and_json_paths_work(tmp_path):
    gt, dets = random_set(7)
    gt_copy, dets_copy = copy.deepcopy(gt), copy.deepcopy(dets)
    stats = coco_evaluate(gt, dets)
    assert gt == gt_copy and dets == dets_copy
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    assert coco_evaluate(tmp_path / "gt.json", str(tmp_path / "dt.json")) == stats


def small_medium_large_set() -> dict:
    """At most one object per (image, category), of every size, plus crowds."""
    anns = []
    sizes = [10, 20, 50, 80, 120, 200]
    for img in range(6):
        for cat in (1, 2):
            s = sizes[(img + cat) % len(sizes)]
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img,
                    category_id=cat,
                    bbox=[5.0 * img, 3.0, float(s), s * 0.8],
                    area=s * s * 0.8,
                    iscrowd=0,
                )
            )
    anns.append(
        dict(id=100, image_id=0, category_id=2, bbox=[300, 300, 60, 60], area=3600.0, iscrowd=1)
    )
    return {
        "images": [{"id": i} for i in range(6)],
        "annotations": anns,
        "categories": [{"id": 1}, {"id": 2}],
    }


def test_perfect_predictions_give_one():
    gt = small_medium_large_set()
    dets = [
        dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=0.9)
        for a in gt["annotations"]
        if not a["iscrowd"]
    ]
    stats = coco_evaluate(gt, dets)
    assert all(v == 1.0 for v in stats.values()), stats
    # A detection on the crowd region is ignored, not a false positive.
    dets.append(dict(image_id=0, category_id=2, bbox=[300, 300, 60, 60], score=0.5))
    assert all(v == 1.0 for v in coco_evaluate(gt, dets).values())
    assert_same(gt, dets)


def test_empty_predictions_give_zero_without_crashing():
    gt = small_medium_large_set()
    stats = coco_evaluate(gt, [])
    assert set(stats) == set(COCO_STAT_NAMES)
    assert all(v == 0.0 for v in stats.values()), stats
    # Detections only of categories absent from the ground truth are dropped: same result.
    assert coco_evaluate(gt, [dict(image_id=0, category_id=7, bbox=[0, 0, 5, 5], score=1)]) == stats


def test_per_category_ap_matches_pycocotools():
    gt, dets = random_set(3)
    ref = reference(gt, dets)
    ours = coco_evaluation(gt, dets)
    for k, cat in enumerate(ref.params.catIds):
        p = ref.eval["precision"][:, :, k, 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else -1.0
        assert ours.per_category_ap()[cat] == pytest.approx(expected, abs=1e-12)
        p50 = p[0]
        expected50 = p50[p50 > -1].mean() if (p50 > -1).any() else -1.0
        assert ours.per_category_ap(iou_threshold=0.5)[cat] == pytest.approx(expected50, abs=1e-12)


def segm_set(seed: int, *, with_box: bool) -> tuple[dict, list]:
    """Polygon ground truth (crowds as uncompressed RLE) and RLE detections."""
    rng = np.random.default_rng(seed)
    h, w, cats = 64, 80, [1, 2]

    def polygon(cx: float, cy: float, r: float) -> list[float]:
        a = np.sort(rng.uniform(0, 2 * np.pi, 6))
        rr = r * rng.uniform(0.6, 1.0, 6)
        return np.stack([cx + rr * np.cos(a), cy + rr * np.sin(a)], 1).ravel().round(2).tolist()

    def rle_of(poly: list[float]) -> dict:
        rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
        return {"size": rle["size"], "counts": rle["counts"].decode()}

    anns, dets = [], []
    for img in range(5):
        for _ in range(rng.integers(1, 5)):
            cx, cy, r = rng.uniform(8, w - 8), rng.uniform(8, h - 8), rng.uniform(2, 25)
            poly, cat, crowd = polygon(cx, cy, r), int(rng.choice(cats)), rng.random() < 0.2
            rle = rle_of(poly)
            seg = [poly]
            if crowd:
                flat = mask_utils.decode(rle).ravel(order="F")  # uncompressed RLE, as COCO crowds
                bounds = np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]
                seg = {"size": [h, w], "counts": [0] * int(flat[0]) + np.diff(bounds).tolist()}
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img,
                    category_id=cat,
                    segmentation=seg,
                    area=float(mask_utils.area(rle)),
                    bbox=[0, 0, 1, 1],
                    iscrowd=int(crowd),
                )
            )
            for _ in range(rng.choice([0, 1, 2])):
                q = polygon(cx + rng.normal(0, 2), cy + rng.normal(0, 2), r * rng.uniform(0.8, 1.2))
                d = dict(image_id=img, category_id=cat, segmentation=rle_of(q), score=rng.random())
                dets.append(d)
        dets.append(
            dict(
                image_id=img,
                category_id=int(rng.choice(cats)),
                segmentation=rle_of(polygon(40, 30, 10)),
                score=rng.random(),
            )
        )
    if with_box:
        for d in dets:
            d["bbox"] = mask_utils.toBbox(d["segmentation"]).tolist()
    gt = {
        "images": [{"id": i, "height": h, "width": w} for i in range(5)],
        "annotations": anns,
        "categories": [{"id": c} for c in cats],
    }
    return gt, dets


@pytest.mark.parametrize("seed", range(3))
def test_segm_matches_pycocotools(seed):
    pytest.importorskip("modernvision.metrics.masks")
    assert_same(*segm_set(seed, with_box=seed == 1), iou_type="segm")


def test_bad_inputs_raise_clear_errors(tmp_path):
    gt = small_medium_large_set()
    with pytest.raises(ValueError, match="absent from the ground truth"):
        coco_evaluate(gt, [dict(image_id=77, category_id=1, bbox=[0, 0, 1, 1], score=1.0)])
    with pytest.raises(ValueError, match="'score'"):
        coco_evaluate(gt, [dict(image_id=0, category_id=1, bbox=[0, 0, 1, 1])])
    with pytest.raises(ValueError, match="bbox"):
        coco_evaluate(gt, [dict(image_id=0, category_id=1, bbox=[0, 0, 1], score=1.0)])
    with pytest.raises(FileNotFoundError, match="ground_truth"):
        coco_evaluate(tmp_path / "missing.json", [])
    with pytest.raises(ValueError, match="iou_type"):
        coco_evaluate(gt, [], iou_type="keypoints")
    with pytest.raises(TypeError, match="ground_truth"):
        coco_evaluate([1, 2], [])


def test_bad_files_and_ground_truth_without_images_name_the_problem(tmp_path):
    import json

    from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError

    gt = small_medium_large_set()
    dets = [dict(image_id=gt["images"][0]["id"], category_id=1, bbox=[0, 0, 5, 5], score=0.9)]
    gt_file, dt_file = tmp_path / "gt.json", tmp_path / "dets.json"
    gt_file.write_text(json.dumps(gt))
    dt_file.write_text(json.dumps(dets))
    assert coco_evaluate(gt_file, dt_file) == coco_evaluate(gt, dets)

    cut = tmp_path / "cut.json"
    cut.write_text(gt_file.read_text()[:200])  # a download or write that stopped early
    with pytest.raises(BadFileError, match=r"ground_truth file .*cut\.json is not valid.*trunc"):
        coco_evaluate(cut, dets)
    junk = tmp_path / "junk.json"
    junk.write_text("images: [1, 2]\n")
    with pytest.raises(BadFileError, match=r"junk\.json is not valid JSON \(.*, line 1 column 1\)"):
        coco_evaluate(gt, junk)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(BadFileError, match=r"empty\.json is empty"):
        coco_evaluate(empty, dets)
    with pytest.raises(MissingFileError, match="is a directory"):
        coco_evaluate(tmp_path, dets)

    # a ground truth without 'images' is the ground truth's fault, not the detections'
    no_images = {k: v for k, v in gt.items() if k != "images"}
    with pytest.raises(InvalidArgumentError, match="ground_truth has no 'images'"):
        coco_evaluate(no_images, dets)
    (tmp_path / "noimg.json").write_text(json.dumps(no_images))
    with pytest.raises(BadFileError, match=r"noimg\.json has no 'images'") as info:
        coco_evaluate(tmp_path / "noimg.json", dets)
    assert "detections" not in str(info.value)
    # the two files swapped
    with pytest.raises(BadFileError, match="is it a detections file"):
        coco_evaluate(dt_file, gt_file)
    dt_file.write_text(json.dumps([dict(dets[0], image_id=999)]))
    with pytest.raises(BadFileError, match=r"dets\.json refer to 1 image id\(s\) absent"):
        coco_evaluate(gt_file, dt_file)
