"""Retrieval metrics against pytorch-metric-learning's AccuracyCalculator; kNN backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError, UnknownNameError
from modernvision.retrieval import KNNIndex, exact_knn, retrieval_metrics

pytest.importorskip("pytorch_metric_learning")
faiss = pytest.importorskip("faiss")


def _clusters(n=300, d=16, classes=6, noise=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=g)
    centres = torch.randn(classes, d, generator=g)
    return F.normalize(centres[labels] + noise * torch.randn(n, d, generator=g), dim=1), labels


def _reference(query, qlab, ref=None, rlab=None):
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calc = AccuracyCalculator(include=("precision_at_1", "r_precision",
                                       "mean_average_precision_at_r"), device=torch.device("cpu"))
    if ref is None:
        return calc.get_accuracy(query, qlab)
    return calc.get_accuracy(query, qlab, ref, rlab, ref_includes_query=False)


def test_metrics_equal_accuracy_calculator_leave_one_out():
    emb, labels = _clusters()
    ours = retrieval_metrics(emb, labels)
    ref = _reference(emb, labels)
    assert ours["precision_at_1"] == pytest.approx(ref["precision_at_1"], abs=1e-12)
    assert ours["r_precision"] == pytest.approx(ref["r_precision"], abs=1e-12)
    assert ours["map_at_r"] == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-12)
    assert 0 < ours["map_at_r"] < ours["recall@1"] <= ours["recall@5"] <= 1
    assert ours["recall@1"] == ours["precision_at_1"]


def test_metrics_equal_accuracy_calculator_query_vs_reference_with_lone_labels():
    emb, labels = _clusters(n=400, classes=8)
    query, qlab = emb[:150], labels[:150].clone()
    qlab[:5] = 99  # labels the reference lacks: left out, as the reference does
    ours = retrieval_metrics(query, qlab, emb[150:], labels[150:])
    ref = _reference(query, qlab, emb[150:], labels[150:])
    assert ours["queries"] == 145
    assert ours["precision_at_1"] == pytest.approx(ref["precision_at_1"], abs=1e-12)
    assert ours["r_precision"] == pytest.approx(ref["r_precision"], abs=1e-12)
    assert ours["map_at_r"] == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-12)


def test_recall_at_k_by_hand():
    emb = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    labels = torch.tensor([0, 1, 0, 1])
    # nearest-first labels: q0: 1 0 1, q1: 0 0 1, q2: 1 0 1, q3: 0 1 0
    out = retrieval_metrics(emb, labels, ks=(1, 2, 3))
    assert out["recall@1"] == 0 and out["map_at_r"] == 0
    assert out["recall@2"] == pytest.approx(0.75) and out["recall@3"] == 1


def test_exact_knn_chunks_and_excludes_self():
    x = torch.randn(50, 4)
    full = torch.cdist(x, x)
    d, i = exact_knn(x, x, 3, chunk=7)
    ref_d, ref_i = full.topk(3, largest=False)
    assert torch.equal(i, ref_i) and torch.allclose(d, ref_d, atol=2e-3)  # sqrt(eps) at 0
    _, i2 = exact_knn(x, x, 3, exclude_self=True, chunk=7)
    assert torch.equal(i2, full.fill_diagonal_(float("inf")).topk(3, largest=False).indices)


def test_faiss_flat_equals_exact():
    g = torch.Generator().manual_seed(1)
    gallery, queries = torch.randn(2000, 32, generator=g), torch.randn(100, 32, generator=g)
    results = {}
    for backend in ("exact", "faiss-flat"):
        index = KNNIndex(32, backend=backend)
        index.add(gallery[:1200])
        index.add(gallery[1200:])  # grows
        results[backend] = index.search(queries, 10)
    assert torch.equal(results["exact"][1], results["faiss-flat"][1])
    assert torch.allclose(results["exact"][0], results["faiss-flat"][0], atol=1e-4)


@pytest.mark.parametrize("backend", ["faiss-ivf", "faiss-hnsw"])
def test_approximate_backends_find_most_true_neighbours(backend):
    emb, _ = _clusters(n=3000, d=16, classes=30, noise=0.3)
    index, exact = KNNIndex(16, backend=backend), KNNIndex(16)
    index.add(emb)
    exact.add(emb)
    q = emb[:200] + 0.01
    recall = (index.search(q, 1)[1] == exact.search(q, 1)[1]).float().mean()
    assert recall >= 0.9


def test_index_errors():
    with pytest.raises(UnknownNameError, match="faiss-hnsw"):
        KNNIndex(4, backend="faiss-hnws")
    index = KNNIndex(4)
    with pytest.raises(InvalidArgumentError, match="empty"):
        index.search(torch.randn(1, 4), 1)
    with pytest.raises(InvalidArgumentError, match=r"\[N, 4\]"):
        index.add(np.zeros((3, 5), np.float32))
    index.add(torch.randn(3, 4))
    assert index.search(torch.randn(2, 4), 10)[1].shape == (2, 3)
