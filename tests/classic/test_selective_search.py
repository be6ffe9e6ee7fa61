"""Selective search: hierarchy invariants, ranking, determinism, recall on known boxes, input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from modernvision._errors import InvalidArgumentError, UnknownNameError
from modernvision.classic.selective_search import (
    COLOR_SPACES,
    FAST,
    FAST_LEVEL,
    QUALITY,
    SINGLE,
    Hierarchy,
    SelectiveSearchConfig,
    _hierarchies,
    _levels,
    color_space,
    hierarchical_grouping,
    rank_proposals,
    selective_search,
    to_rgb,
)
from modernvision.data import load_photo


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(load_photo("astronaut")[60:156, 170:282])  # the face, 96x112


def _known_scene() -> tuple[np.ndarray, torch.Tensor]:
    """Solid shapes on a real grass texture, and their tight boxes (pixel edges)."""
    grass = load_photo("grass")[:128, :160]
    image = np.repeat((grass // 2 + 40)[..., None], 3, axis=2).astype(np.uint8)
    image[..., 0] //= 2  # greenish
    cv2.rectangle(image, (10, 12), (49, 51), (220, 40, 40), thickness=-1)  # x 10..49, y 12..51
    cv2.circle(image, (110, 40), 22, (40, 60, 230), thickness=-1)  # x 88..132, y 18..62
    cv2.ellipse(image, (70, 100), (40, 16), 0, 0, 360, (240, 230, 60), thickness=-1)
    boxes = torch.tensor([[10, 12, 50, 52], [88, 18, 133, 63], [30, 84, 111, 117]],
                         dtype=torch.float32)
    return image, boxes


def _leaves(children: np.ndarray, region: int) -> list[int]:
    stack, out = [region], []
    while stack:
        r = stack.pop()
        if children[r, 0] < 0:
            out.append(r)
        else:
            stack.extend(children[r])
    return out


@pytest.mark.parametrize("space, similarity", [("hsv", "C+T+S+F"), ("lab", "T+S+F"),
                                               ("h", "F"), ("i", "S"), ("rgi", "C+T+S+F")])
def test_every_region_is_a_union_of_segments_and_the_last_covers_the_image(
        photo, space, similarity):
    h = hierarchical_grouping(photo, space=space, k=50, similarity=similarity)
    n = h.num_segments
    height, width = photo.shape[:2]
    assert n > 5
    assert len(h.boxes) == 2 * n - 1  # n initial regions, n - 1 merges
    np.testing.assert_array_equal(h.boxes[-1], [0, 0, width, height])
    assert h.sizes[-1] == height * width
    # merges only reach back in time, and each region is merged into a parent exactly once
    merged = h.children[n:]
    assert (merged >= 0).all() and (merged < np.arange(n, 2 * n - 1)[:, None]).all()
    assert sorted(merged.ravel().tolist()) == list(range(2 * n - 2))
    np.testing.assert_array_equal(h.sizes[n:], h.sizes[merged].sum(axis=1))
    for r in range(len(h.boxes)):
        mask = np.isin(h.segments, _leaves(h.children, r))
        assert mask.sum() == h.sizes[r]
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(h.boxes[r], [xs.min(), ys.min(), xs.max() + 1,
                                                   ys.max() + 1])


def test_proposals_are_every_region_of_every_grouping_without_duplicates(photo):
    hierarchies = _hierarchies(to_rgb(photo), FAST)
    assert len(hierarchies) == FAST.num_groupings == 8
    every = {tuple(b) for h in hierarchies for b in h.boxes.tolist()}
    boxes = selective_search(photo, mode="fast")
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
    assert len({tuple(b) for b in boxes.tolist()}) == len(boxes)  # no duplicates
    assert {tuple(b) for b in boxes.tolist()} == every  # every region of every iteration


def test_ranking_is_random_times_hierarchy_position(photo):
    hierarchies = _hierarchies(to_rgb(photo), FAST)[:2]
    ranked = rank_proposals(hierarchies, seed=3)
    # the paper's value: RND * i with i = 1 for the last region of a hierarchy
    rnd = np.random.default_rng(3).random(sum(len(h.boxes) for h in hierarchies))
    values = {}
    offset = 0
    for h in hierarchies:
        positions = np.arange(len(h.boxes), 0, -1)
        for b, v in zip(h.boxes.tolist(), rnd[offset:offset + len(h.boxes)] * positions):
            values[tuple(b)] = min(values.get(tuple(b), np.inf), v)  # a duplicate keeps its best
        offset += len(h.boxes)
    got = [values[tuple(b)] for b in ranked.tolist()]
    assert len(got) == len(values)
    assert all(a <= b for a, b in zip(got, got[1:]))
    # big regions (near the top of a hierarchy) are favoured: the image box ranks early
    image_box = [0, 0, photo.shape[1], photo.shape[0]]
    assert ranked.tolist().index(image_box) < len(ranked) // 10


def test_levels_count_the_merge_tree_from_the_initial_regions():
    # 4 initial regions; a chain (0+1, then +2, then +3) and a balanced tree ((0+1) + (2+3))
    initial = [[-1, -1]] * 4
    chain = np.array(initial + [[0, 1], [4, 2], [5, 3]], dtype=np.int64)
    balanced = np.array(initial + [[0, 1], [2, 3], [4, 5]], dtype=np.int64)
    assert _levels(chain, 4).tolist() == [1, 1, 1, 1, 2, 3, 4]
    assert _levels(balanced, 4).tolist() == [1, 1, 1, 1, 2, 2, 3]


def test_level_ranking_is_random_times_level():
    # one hand-built hierarchy: 4 regions in a row, merged as a chain; distinct boxes
    boxes = np.array([[0, 0, 1, 1], [1, 0, 2, 1], [2, 0, 3, 1], [3, 0, 4, 1], [0, 0, 2, 1],
                      [0, 0, 3, 1], [0, 0, 4, 1]], dtype=np.float32)
    children = np.array([[-1, -1]] * 4 + [[0, 1], [4, 2], [5, 3]], dtype=np.int64)
    h = Hierarchy(np.array([[0, 1, 2, 3]]), boxes, children, np.array([1, 1, 1, 1, 2, 3, 4]))
    value = np.random.default_rng(5).random(7) * np.array([1, 1, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(rank_proposals([h], seed=5, ranking="level"),
                                  boxes[np.argsort(value, kind="stable")])
    value = np.random.default_rng(5).random(7) * np.arange(7, 0, -1)  # the paper's positions
    np.testing.assert_array_equal(rank_proposals([h], seed=5), boxes[np.argsort(value)])
    with pytest.raises(UnknownNameError, match="level"):
        rank_proposals([h], ranking="height")


def test_min_size_defaults_to_k_and_fast_level_is_opencvs_settings(photo):
    same = SelectiveSearchConfig(ks=(100,), min_size=100)
    torch.testing.assert_close(selective_search(photo, config=same),
                               selective_search(photo, config=SINGLE), rtol=0, atol=0)
    coarse = SelectiveSearchConfig(ks=(100,), min_size=400)
    assert len(selective_search(photo, config=coarse)) < len(selective_search(photo, config=SINGLE))
    assert FAST_LEVEL.ks == (150, 300, 450) and FAST_LEVEL.min_size == 100
    assert FAST_LEVEL.ranking == "level" and FAST_LEVEL.num_groupings == 12


def test_fast_small_is_fast_level_then_the_fast_boxes_not_listed_yet(photo):
    level = selective_search(photo, mode="fast-level")
    fast = selective_search(photo, mode="fast")
    small = selective_search(photo, mode="fast-small")
    torch.testing.assert_close(small[:len(level)], level, rtol=0, atol=0)
    assert len({tuple(b) for b in small.tolist()}) == len(small)  # no duplicates
    listed = {tuple(b) for b in level.tolist()}
    rest = [b for b in fast.tolist() if tuple(b) not in listed]
    assert small[len(level):].tolist() == rest  # in fast's own order
    # the same through a tuple of configurations
    torch.testing.assert_close(selective_search(photo, config=(FAST_LEVEL, FAST)), small)


def test_deterministic_under_a_seed(photo):
    a = selective_search(photo, mode="single", seed=0)
    b = selective_search(photo, mode="single", seed=0)
    c = selective_search(photo, mode="single", seed=1)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert {tuple(x) for x in a.tolist()} == {tuple(x) for x in c.tolist()}


@pytest.mark.parametrize("mode", ["single", "fast"])
def test_recall_of_known_boxes(mode):
    image, truth = _known_scene()
    boxes = selective_search(image, mode=mode)
    best = box_iou(truth, boxes[:300]).max(dim=1).values
    assert (best >= 0.8).all(), best


def test_quality_has_80_groupings_and_finds_the_known_boxes():
    assert QUALITY.num_groupings == 80
    image, truth = _known_scene()
    boxes = selective_search(image[::2, ::2], mode="quality")
    best = box_iou(truth / 2, boxes).max(dim=1).values
    assert (best >= 0.7).all(), best


def test_grey_rgba_and_tensor_inputs(photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    as_rgb = selective_search(np.repeat(grey[..., None], 3, axis=2), mode="single")
    torch.testing.assert_close(selective_search(grey, mode="single"), as_rgb)
    torch.testing.assert_close(selective_search(grey[..., None], mode="single"), as_rgb)
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 128, np.uint8)], axis=2)
    ref = selective_search(photo, mode="single")
    torch.testing.assert_close(selective_search(rgba, mode="single"), ref)
    tensor = torch.from_numpy(photo).permute(2, 0, 1)
    torch.testing.assert_close(selective_search(tensor, mode="single"), ref)
    torch.testing.assert_close(selective_search(tensor.float() / 255, mode="single"), ref)


def test_tiny_images_and_filters():
    one = selective_search(np.zeros((1, 1, 3), np.uint8))
    torch.testing.assert_close(one, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    small = selective_search(load_photo("coffee")[:6, :9], mode="fast")
    assert len(small) >= 1 and [0.0, 0.0, 9.0, 6.0] in small.tolist()
    none = selective_search(load_photo("coffee")[:6, :9], min_box_side=20)
    assert none.shape == (0, 4)
    top = selective_search(load_photo("coffee")[100:164, 200:264], top=5)
    assert top.shape == (5, 4)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_color_spaces_are_in_unit_range(photo, space):
    out = color_space(photo, space)
    assert out.dtype == np.float32 and out.shape[:2] == photo.shape[:2]
    assert out.shape[2] == (1 if space in ("h", "i") else 3)
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.01


def test_bad_input_is_named():
    with pytest.raises(UnknownNameError, match="quality"):
        selective_search(np.zeros((8, 8, 3), np.uint8), mode="qualty")
    with pytest.raises(InvalidArgumentError, match="empty"):
        selective_search(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(InvalidArgumentError, match="C = 1, 3 or 4"):
        selective_search(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        selective_search(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(InvalidArgumentError, match="pixels"):
        selective_search(np.zeros((8, 8), np.int32))
    with pytest.raises(InvalidArgumentError, match="top"):
        selective_search(np.zeros((8, 8), np.uint8), top=0)
    with pytest.raises(UnknownNameError, match="hsv"):
        SelectiveSearchConfig(color_spaces=("hsb",))
    with pytest.raises(InvalidArgumentError, match="similarity"):
        SelectiveSearchConfig(similarities=("C+X",))
    with pytest.raises(InvalidArgumentError, match="ks"):
        SelectiveSearchConfig(ks=(0,))
    with pytest.raises(InvalidArgumentError, match="tuple"):
        SelectiveSearchConfig(ks=[50])
    with pytest.raises(InvalidArgumentError, match="min_size"):
        SelectiveSearchConfig(min_size=0)
    with pytest.raises(UnknownNameError, match="paper"):
        SelectiveSearchConfig(ranking="height")
    with pytest.raises(InvalidArgumentError, match="tuple of them"):
        selective_search(np.zeros((8, 8), np.uint8), config=())
