"""Metric-learning losses and mining: formulas, and pytorch-metric-learning as the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError
from modernvision.losses.metric import (
    OnlineContrastiveLoss,
    OnlineTripletLoss,
    PKSampler,
    batch_hard_triplets,
    contrastive_loss,
    mine_triplets,
    random_triplets,
    triplet_loss,
)

pml = pytest.importorskip("pytorch_metric_learning")


def _batch(n: int = 48, d: int = 8, classes: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).float()
    labels = torch.randint(classes, (n,), generator=g)
    return emb, labels


def test_contrastive_formula():
    e1, e2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    same = torch.tensor([1, 0, 1, 0, 0, 1]).bool()
    d = (e1 - e2).norm(dim=1)
    m = 2.5
    expected = torch.where(same, d ** 2, torch.clamp(m - d, min=0) ** 2).mean()
    assert torch.allclose(contrastive_loss(e1, e2, same, margin=m), expected)
    unbounded = torch.where(same, d ** 2, -(d ** 2)).mean()
    assert torch.allclose(contrastive_loss(e1, e2, same, margin=None), unbounded)
    # far-apart negatives cost nothing with a margin; the unbounded form keeps rewarding them
    far = contrastive_loss(e1 * 0, e1 * 0 + 10, torch.zeros(6).bool(), margin=1.0)
    assert far == 0
    assert contrastive_loss(e1 * 0, e1 * 0 + 10, torch.zeros(6).bool(), margin=None) < -100


def test_contrastive_gradcheck():
    e1 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    e2 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    same = torch.tensor([True, False, True, False, False])
    assert torch.autograd.gradcheck(lambda a, b: contrastive_loss(a, b, same, margin=3.0),
                                    (e1, e2))


def test_triplet_formula_and_reference():
    a, p, n = (torch.randn(7, 5, dtype=torch.float64) for _ in range(3))
    m = 0.3
    expected = torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + m, min=0).mean()
    assert torch.allclose(triplet_loss(a, p, n, margin=m), expected)
    plain = torch.clamp((a - p).norm(dim=1) - (a - n).norm(dim=1) + m, min=0).mean()
    assert torch.allclose(triplet_loss(a, p, n, margin=m, squared=False), plain)
    # pytorch-metric-learning's TripletMarginLoss with a mean reducer on the same triplets
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.reducers import MeanReducer

    emb, labels = _batch()
    ai, pi, ni = mine_triplets(emb, labels, margin=0.2, kind="all")
    ref = TripletMarginLoss(margin=0.2, distance=LpDistance(), reducer=MeanReducer())
    ours = triplet_loss(emb[ai], emb[pi], emb[ni], margin=0.2, squared=False)
    assert torch.allclose(ours, ref(emb, labels, (ai, pi, ni)), atol=1e-6)


def test_triplet_gradcheck():
    a, p, n = (torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda x, y, z: triplet_loss(x, y, z, margin=5.0),
                                    (a, p, n))


@pytest.mark.parametrize("kind", ["all", "hard", "semihard", "easy"])
@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_mining_equals_pytorch_metric_learning(kind, margin):
    from pytorch_metric_learning.miners import TripletMarginMiner

    emb, labels = _batch()
    ref = TripletMarginMiner(margin=margin, type_of_triplets=kind)(emb, labels)
    ours = mine_triplets(emb, labels, margin=margin, kind=kind)
    assert ours[0].numel() > 0
    for o, r in zip(ours, ref):
        assert torch.equal(o, r.long())


def test_mining_is_chunked_with_the_same_answer():
    emb, labels = _batch(n=40)
    whole = mine_triplets(emb, labels, kind="semihard")
    chunked = mine_triplets(emb, labels, kind="semihard", max_elements=40 * 40 * 3)
    for a, b in zip(whole, chunked):
        assert torch.equal(a, b)


def test_mining_kinds_partition_and_conditions():
    emb, labels = _batch()
    m = 0.2
    everything = mine_triplets(emb, labels, margin=m, kind="all")
    easy = mine_triplets(emb, labels, margin=m, kind="easy")
    d = torch.cdist(emb, emb)
    n_valid = sum(int(((labels == c).sum() - 1) * (labels == c).sum() * (labels != c).sum())
                  for c in labels.unique())
    assert everything[0].numel() + easy[0].numel() == n_valid
    a, p, n = mine_triplets(emb, labels, margin=m, kind="semihard")
    t = d[a, n] - d[a, p]
    assert (t > 0).all() and (t <= m).all()
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all() and (a != p).all()


def test_batch_hard_equals_reference():
    from pytorch_metric_learning.miners import BatchHardMiner

    emb, labels = _batch()
    ours = batch_hard_triplets(emb, labels)
    ref = BatchHardMiner()(emb, labels)
    for o, r in zip(ours, ref):
        assert torch.equal(o, r.long())


def test_random_triplets_are_valid():
    _, labels = _batch()
    a, p, n = random_triplets(labels, 500, generator=torch.Generator().manual_seed(0))
    assert a.numel() == 500
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all() and (a != p).all()


@pytest.mark.parametrize("mining", ["semihard", "hard", "all", "batch_hard", "random"])
def test_online_triplet_loss_backprops(mining):
    emb, labels = _batch()
    emb = emb.clone().requires_grad_(True)
    loss = OnlineTripletLoss(0.2, mining=mining)(emb, labels)
    loss.backward()
    assert torch.isfinite(loss) and emb.grad is not None


@pytest.mark.parametrize("squared", [True, False])
def test_online_triplet_loss_equals_triplet_loss_on_its_triplets(squared):
    emb, labels = _batch()
    emb = emb.double().requires_grad_(True)
    loss_fn = OnlineTripletLoss(0.2, mining="all", squared=squared)
    a, p, n = loss_fn.mine(emb, labels)
    ours = loss_fn(emb, labels)
    ref = triplet_loss(emb[a], emb[p], emb[n], margin=0.2, squared=squared)
    assert torch.allclose(ours, ref)
    g1, = torch.autograd.grad(ours, emb)
    g2, = torch.autograd.grad(ref, emb)
    assert torch.allclose(g1, g2)


def test_online_losses_without_triplets_are_zero_with_a_graph():
    emb = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3])  # no positives
    loss = OnlineTripletLoss(mining="semihard")(emb, labels)
    loss.backward()
    assert loss == 0
    assert OnlineContrastiveLoss(1.0)(emb, labels) >= 0


def test_online_contrastive_balanced():
    emb, labels = _batch(n=12)
    i, j = torch.triu_indices(12, 12, 1)
    same = labels[i] == labels[j]
    loss = OnlineContrastiveLoss(0.8)(emb, labels)
    expected = (contrastive_loss(emb[i[same]], emb[j[same]], same[same], margin=0.8)
                + contrastive_loss(emb[i[~same]], emb[j[~same]], same[~same], margin=0.8))
    assert torch.allclose(loss, expected)


def test_pk_sampler():
    labels = torch.arange(10).repeat_interleave(7)
    sampler = PKSampler(labels, 4, 3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 70 // 12
    for b in batches:
        lab = labels[b].view(4, 3)
        assert (lab == lab[:, :1]).all() and lab[:, 0].unique().numel() == 4
        assert len(set(b)) == 12
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches
    with pytest.raises(InvalidArgumentError, match="p must be"):
        PKSampler(labels, 11, 2)


def test_bad_inputs_are_named():
    with pytest.raises(InvalidArgumentError, match="kind must be"):
        mine_triplets(torch.randn(4, 2), torch.zeros(4), kind="medium")
    with pytest.raises(InvalidArgumentError, match="labels must be"):
        mine_triplets(torch.randn(4, 2), torch.zeros(3))
    with pytest.raises(InvalidArgumentError, match="emb1 and emb2"):
        contrastive_loss(torch.randn(4, 2), torch.randn(4, 3), torch.zeros(4))
