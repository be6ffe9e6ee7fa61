"""KDTree: exact k-NN equals brute force (ours, OpenCV's BFMatcher); best-bin-first behaviour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from modernvision.classic.kdtree import KDTree, brute_force_knn
from modernvision.classic.matching import sift_features
from modernvision.data import opencv_sample


def _grey(name: str) -> np.ndarray:
    return cv2.imread(str(opencv_sample(name)), cv2.IMREAD_GRAYSCALE)


@pytest.fixture(scope="module")
def sift_sets() -> tuple[np.ndarray, np.ndarray]:
    """Database: box_in_scene + graf1 descriptors; queries: box + a slice of graf3."""
    database = np.concatenate(
        [sift_features(_grey(n))[1] for n in ("box_in_scene.png", "graf1.png")]
    )
    queries = np.concatenate(
        [sift_features(_grey("box.png"))[1], sift_features(_grey("graf3.png"))[1][::16]]
    )
    return database, queries


@pytest.mark.parametrize("principal_axes", [None, 4, 16])
@pytest.mark.parametrize("leaf_size", [1, 5, 32])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_exact_equals_brute_force_on_gaussian_data(principal_axes, leaf_size, k):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(1500, 16)) * np.linspace(3.0, 0.2, 16)  # anisotropic
    queries = rng.normal(size=(150, 16)) * 1.5
    tree = KDTree(data, leaf_size=leaf_size, principal_axes=principal_axes)
    dist, idx = tree.query(queries, k=k)
    ref_dist, ref_idx = brute_force_knn(data, queries, k=k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-12)


def test_exact_equals_brute_force_on_sift(sift_sets):
    """Real 128-d SIFT descriptors: bit-identical to brute force, same as OpenCV's BFMatcher."""
    database, queries = sift_sets
    assert database.shape[1] == 128 and len(database) > 3000
    tree = KDTree(database)
    dist, idx = tree.query(queries, k=2)
    ref_dist, ref_idx = brute_force_knn(database, queries, k=2)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)  # integer-valued descriptors: exact sums

    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(queries, database, k=2)
    cv_idx = np.array([[m.trainIdx for m in p] for p in pairs])
    cv_dist = np.array([[m.distance for m in p] for p in pairs])
    np.testing.assert_allclose(dist, cv_dist, rtol=1e-5)
    untied = dist[:, 0] < dist[:, 1]
    np.testing.assert_array_equal(idx[untied, 0], cv_idx[untied, 0])

    plain = KDTree(database, principal_axes=None, leaf_size=8)
    np.testing.assert_array_equal(plain.query(queries, k=2)[1], idx)


def test_ties_go_to_the_smaller_index():
    # Hand-made: four copies of one point and two points at equal distance from the query.
    data = np.array([[1.0, 0.0], [5.0, 5.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    for leaf_size in (1, 2, 8):
        tree = KDTree(data, leaf_size=leaf_size)
        dist, idx = tree.query(np.array([[1.0, 0.0], [0.0, 0.0]]), k=4)
        np.testing.assert_array_equal(idx[0], [0, 2, 4, 5])
        np.testing.assert_array_equal(dist[0], [0, 0, 0, 0])
        np.testing.assert_array_equal(idx[1], [0, 2, 3, 4])
        np.testing.assert_array_equal(dist[1], [1, 1, 1, 1])


def test_small_and_degenerate_inputs():
    one = KDTree(np.array([[2.0, 3.0]]))
    dist, idx = one.query(np.array([0.0, 0.0]))
    assert idx.tolist() == [[0]] and dist[0, 0] == pytest.approx(np.sqrt(13))
    same = KDTree(np.ones((50, 3)), leaf_size=4)  # cannot be split: one leaf
    assert same.n_leaves == 1
    assert same.query(np.zeros(3), k=50)[1].tolist() == [list(range(50))]
    line = np.arange(20, dtype=np.float64)[:, None]  # 1-d data, hand-checkable
    dist, idx = KDTree(line, leaf_size=2).query(np.array([[7.4]]), k=3)
    assert idx.tolist() == [[7, 8, 6]]
    np.testing.assert_allclose(dist, [[0.4, 0.6, 1.4]])


def test_best_bin_first(sift_sets):
    database, queries = sift_sets
    tree = KDTree(database)
    exact_d, exact_i = tree.query(queries, k=2)
    # With a budget of every point, best-bin-first is exact too.
    np.testing.assert_array_equal(tree.query(queries, k=2, checks=len(database))[1], exact_i)
    recalls = []
    for checks in (16, 128, 1024):
        _, idx, counts = tree.query(queries, k=2, checks=checks, return_counts=True)
        # It stops at the first leaf boundary after the budget (or earlier, when provably exact).
        assert counts[:, 0].max() <= checks + tree.leaf_size
        assert (counts[:, 2] == 0).all()
        recalls.append(float((idx[:, 0] == exact_i[:, 0]).mean()))
    assert recalls[0] < recalls[1] < recalls[2]
    assert recalls[2] > 0.9


def test_exact_search_counts(sift_sets):
    database, queries = sift_sets
    tree = KDTree(database)
    _, _, counts = tree.query(queries[:50], k=2, return_counts=True)
    assert counts.shape == (50, 3)
    assert (counts[:, 0] <= len(database)).all() and (counts[:, 1] <= counts[:, 0]).all()
    assert (counts[:, 1] >= 2).all() and (counts[:, 2] >= 1).all()
    assert tree.n_points == len(database) and tree.dim == 128
    assert tree.n_leaves * tree.leaf_size >= len(database)


def test_errors_name_the_argument():
    data = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="data"):
        KDTree(np.zeros(5))
    with pytest.raises(ValueError, match="data"):
        KDTree(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        KDTree(np.array([[0.0, np.nan]]))
    with pytest.raises(TypeError, match="data"):
        KDTree(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="leaf_size"):
        KDTree(data, leaf_size=0)
    with pytest.raises(ValueError, match="principal_axes"):
        KDTree(data, principal_axes=0)
    tree = KDTree(data)
    with pytest.raises(ValueError, match="queries.*3 columns"):
        tree.query(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="k"):
        tree.query(np.zeros((2, 3)), k=11)
    with pytest.raises(ValueError, match="checks"):
        tree.query(np.zeros((2, 3)), checks=0)
    dist, idx = tree.query(np.zeros((0, 3)), k=2)
    assert dist.shape == (0, 2) and idx.shape == (0, 2)


def test_grouped_queries_and_threads_give_the_same_answer():
    """Many queries sharing one home leaf (groups of at most 64 walk the tree together), with
    duplicates and exact ties: equal to brute force, with 1 thread and with all of them."""
    import numba

    rng = np.random.default_rng(3)
    data = rng.integers(0, 6, size=(3000, 24)).astype(np.float64)
    data[1500:] = data[:1500]  # every point twice: exact ties, broken by the smaller index
    centre = data[17]
    queries = centre + rng.normal(scale=0.05, size=(700, 24))  # nearly all in data[17]'s leaf
    queries[::50] = centre  # duplicated queries
    ref_dist, ref_idx = brute_force_knn(data, queries, k=5)
    tree = KDTree(data, leaf_size=16)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            dist, idx = tree.query(queries, k=5)
            np.testing.assert_array_equal(idx, ref_idx)
            np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-12)  # sum order
    finally:
        numba.set_num_threads(before)
