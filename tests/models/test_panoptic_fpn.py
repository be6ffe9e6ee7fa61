"""Panoptic FPN: the merge (things first, overlap rule, area rule) on hand-built instances and
stuff; the semantic head's shapes; training and inference; the COCO panoptic output read back
and scored."""

import numpy as np
import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_photo
from modernvision.data.formats.coco import (
    PanopticRecord,
    PanopticSegment,
    read_coco_panoptic,
    write_coco_panoptic,
)
from modernvision.data.formats.records import Category
from modernvision.metrics import panoptic_quality
from modernvision.models import create, list_models
from modernvision.models.segmentation.panoptic_fpn import (
    PanopticOutput,
    SemanticFPNHead,
    panoptic_merge,
)

STUFF = (11, 12)  # category ids of stuff labels 1 and 2


def _box(h, w, y0, y1, x0, x1):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def test_merge_things_first_then_stuff_in_the_free_pixels():
    semantic = torch.ones(10, 10, dtype=torch.int64)  # all stuff label 1 ...
    semantic[:, 5:] = 2  # ... left half, label 2 on the right
    masks = torch.stack([_box(10, 10, 2, 6, 2, 8)])
    ids, segments = panoptic_merge(masks, torch.tensor([0.9]), torch.tensor([3]), semantic,
                                   STUFF, stuff_area=1)
    assert segments[0] == {"id": 1, "category_id": 3, "isthing": True, "score": pytest.approx(0.9),
                           "area": 24}
    assert torch.equal(ids == 1, masks[0])  # the thing wins over the stuff under it
    assert [(s["category_id"], s["area"]) for s in segments[1:]] == [(11, 50 - 12),
                                                                    (12, 50 - 12)]
    assert (ids > 0).all()


def test_merge_overlap_rule_drops_mostly_covered_and_trims_the_rest():
    semantic = torch.zeros(10, 10, dtype=torch.int64)  # all "things": no stuff segment
    a = _box(10, 10, 0, 4, 0, 4)  # 16 px, best score
    b = _box(10, 10, 0, 4, 1, 5)  # 16 px, 12 of them in a: 75% taken -> dropped
    c = _box(10, 10, 2, 6, 2, 6)  # 16 px, 4 in a: 25% taken -> its 12 free pixels
    low = _box(10, 10, 8, 10, 8, 10)  # below the score threshold
    ids, segments = panoptic_merge(torch.stack([c, a, b, low]),
                                   torch.tensor([0.7, 0.9, 0.8, 0.4]),
                                   torch.tensor([1, 2, 3, 4]), semantic, STUFF)
    assert [(s["category_id"], s["area"]) for s in segments] == [(2, 16), (1, 12)]
    assert torch.equal(ids == 1, a) and torch.equal(ids == 2, c & ~a)
    assert int((ids == 0).sum()) == 100 - 28  # the rest stays void


def test_merge_overlap_threshold_is_strict_and_tunable():
    semantic = torch.zeros(4, 4, dtype=torch.int64)
    a, b = _box(4, 4, 0, 2, 0, 4), _box(4, 4, 1, 3, 0, 4)  # b is exactly half in a
    _, kept = panoptic_merge(torch.stack([a, b]), torch.tensor([0.9, 0.8]),
                             torch.tensor([1, 1]), semantic, STUFF)
    assert len(kept) == 2  # 0.5 is not more than 0.5
    _, strict = panoptic_merge(torch.stack([a, b]), torch.tensor([0.9, 0.8]),
                               torch.tensor([1, 1]), semantic, STUFF, overlap_thresh=0.4)
    assert len(strict) == 1


def test_merge_area_rule_drops_small_stuff_regions():
    semantic = torch.ones(10, 10, dtype=torch.int64)
    semantic[:3, :3] = 2  # 9 px of stuff 2
    ids, segments = panoptic_merge(torch.zeros(0, 10, 10, dtype=torch.bool), torch.zeros(0),
                                   torch.zeros(0, dtype=torch.int64), semantic, STUFF,
                                   stuff_area=11)
    assert [(s["category_id"], s["area"]) for s in segments] == [(11, 91)]
    assert (ids[:3, :3] == 0).all()  # dropped: void, not given to another class
    # The area counts the *free* pixels: a thing over the stuff can push it below the limit.
    thing = _box(10, 10, 0, 10, 0, 9)
    _, segments = panoptic_merge(thing[None], torch.tensor([0.9]), torch.tensor([1]),
                                 semantic, STUFF, stuff_area=11)
    assert [s["category_id"] for s in segments] == [1]
    with pytest.raises(InvalidArgumentError, match="semantic label 3"):
        panoptic_merge(thing[None, :0], torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                       torch.full((10, 10), 3), STUFF)


def test_coco_panoptic_output_reads_back_and_scores_perfectly(tmp_path):
    semantic = torch.ones(12, 16, dtype=torch.int64)
    semantic[6:] = 2
    masks = torch.stack([_box(12, 16, 1, 5, 1, 6), _box(12, 16, 7, 11, 9, 15)])
    ids, segments = panoptic_merge(masks, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]),
                                   semantic, STUFF, stuff_area=1)
    out = PanopticOutput(detections=None, semantic=semantic, panoptic=ids, segments=segments)
    png, record = out.to_coco(7, "000007.jpg")
    from PIL import Image

    (tmp_path / "pan").mkdir()
    Image.fromarray(png).save(tmp_path / "pan" / record.segments_file)
    cats = [Category(1, "a"), Category(2, "b"), Category(11, "brick", isthing=False),
            Category(12, "grass", isthing=False)]
    write_coco_panoptic([record], cats, tmp_path / "pred.json")
    (back,), _ = read_coco_panoptic(tmp_path / "pred.json")
    loaded = back.load_ids(tmp_path / "pan")
    assert np.array_equal(loaded, ids.numpy())
    assert {s.id: s.category_id for s in back.segments} == {1: 1, 2: 2, 3: 11, 4: 12}
    pred = (loaded, [{"id": s.id, "category_id": s.category_id} for s in back.segments])
    # Ground truth: the same picture with other ids.
    gt_ids = np.where(loaded > 0, loaded + 100, 0)
    gt = (gt_ids, [{"id": s.id + 100, "category_id": s.category_id} for s in back.segments])
    result = panoptic_quality([pred], [gt], {1: True, 2: True, 11: False, 12: False})
    assert result.all.pq == pytest.approx(1.0) and result.things.n == 2
    assert result.stuff.n == 2
    assert record.segments[0].bbox == (1.0, 1.0, 6.0, 5.0)
    assert isinstance(record.segments[0], PanopticSegment) and isinstance(record,
                                                                          PanopticRecord)


def test_semantic_head_upsamples_every_level_to_a_quarter():
    head = SemanticFPNHead(16, {"p2": 4, "p3": 8, "p4": 16, "p5": 32}, 4, channels=8,
                           groups=4)
    # P2 one conv, P3..P5 one to three upsampling stages (Fig. 3).
    assert [sum(isinstance(m, torch.nn.Upsample) for m in h) for h in head.scale_heads] == [
        0, 1, 2, 3]
    feats = {f"p{k}": torch.randn(2, 16, 64 // 2 ** k, 96 // 2 ** k) for k in (2, 3, 4, 5)}
    assert head(feats, (64, 96)).shape == (2, 4, 64, 96)


def _photo_crops():
    image = torch.from_numpy(load_photo("astronaut")).permute(2, 0, 1).float() / 255
    return [image[:, :96, :128], image[:, 200:296, 100:228]]


def test_train_and_infer():
    torch.manual_seed(0)
    model = create("panoptic_fpn_resnet18", num_classes=3, num_stuff_classes=2, min_size=96,
                   max_size=128, rpn_post_nms_top_n_test=30, box_detections_per_img=10,
                   stuff_area_fraction=0.0)
    assert model.stuff_category_ids == (3, 4)
    images = _photo_crops()
    targets = []
    for k in range(2):
        masks = torch.zeros(1, 96, 128, dtype=torch.uint8)
        masks[0, 20:60, 30:80] = 1
        semantic = torch.full((96, 128), 1 + k)
        semantic[:, :20] = 2 - k
        semantic[20:60, 30:80] = 0
        targets.append({"boxes": torch.tensor([[30.0, 20, 80, 60]]),
                        "labels": torch.tensor([1 + k]), "masks": masks, "semantic": semantic})
    model.train()
    losses = model(images, targets)
    assert set(losses) >= {"loss_mask", "loss_semantic", "loss_classifier"}
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    with pytest.raises(InvalidArgumentError, match=r"targets\[0\]\['semantic'\]"):
        model(images, [{**t, "semantic": t["semantic"][:5]} for t in targets])
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    for out in outputs:
        assert isinstance(out, PanopticOutput)
        assert out.semantic.shape == out.panoptic.shape == (96, 128)
        ids = set(torch.unique(out.panoptic).tolist()) - {0}
        assert ids == {s["id"] for s in out.segments}
        assert all(s["category_id"] in (3, 4) for s in out.segments if not s["isthing"])


def test_registry_and_keywords():
    assert {"panoptic_fpn_resnet18", "panoptic_fpn_resnet50"} <= set(list_models("panoptic"))
    with pytest.raises(InvalidArgumentError, match="stuff_category_ids"):
        create("panoptic_fpn_resnet18", num_classes=3, num_stuff_classes=2,
               stuff_category_ids=(5,))
    with pytest.raises(TypeError, match="unexpected keyword"):
        create("panoptic_fpn_resnet18", num_classes=3, num_stuff_classes=2, semantic_dim=3)
