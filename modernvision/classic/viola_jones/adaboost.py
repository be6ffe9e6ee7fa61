"""AdaBoost with decision stumps, as in Viola & Jones' Table 1.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Viola & Jones,
CVPR 2001, section 3 and Table 1 (the boosting algorithm), and IJCV 2004 section 3.1 (finding
the optimal stump in one pass over the sorted feature values).

Per round: normalise the weights; for every feature find the threshold and polarity with the
least weighted error in one pass over its sorted values (keeping running sums ``S+``/``S-``
of positive/negative weight below the current value and the totals ``T+``/``T-``: the error
of splitting there is ``min(S+ + (T- - S-), S- + (T+ - S+))``); keep the best feature;
``beta = eps / (1 - eps)``; multiply the weights of correctly classified samples by ``beta``;
``alpha = log(1 / beta)``. Initial weights ``1 / 2m`` for the ``m`` negatives and ``1 / 2l``
for the ``l`` positives.

Departures: thresholds are only placed between *distinct* values (a split inside a run of
equal values cannot be realised); the threshold is the float32 midpoint of the two values
around the split (bumped up to the upper value when the midpoint rounds onto the lower one),
so ``value < threshold`` reproduces the training split exactly in the detector; ``eps`` is
clamped to ``[1e-10, 1 - 1e-10]`` so a perfect stump gets a large finite ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from modernvision.classic.viola_jones._threads import bands, parallel_map

__all__ = ["AdaBoost", "AdaBoostResult", "adaboost", "best_stumps", "stump_threshold"]

EPS_CLAMP = 1e-10


@numba.njit(cache=True, nogil=True)
def _best_stumps_kernel(f0, f1, values, order, positive, weights, err_out, split_out, pol_out):
    n = values.shape[1]
    t_pos = 0.0
    t_neg = 0.0
    for i in range(n):
        if positive[i]:
            t_pos += weights[i]
        else:
            t_neg += weights[i]
    for f in range(f0, f1):
        # split k: the k smallest values fall below the threshold. k = 0: nothing below.
        best = t_neg  # polarity -1 (below -> negative): errors = S+ + (T- - S-)
        best_k = 0
        best_p = -1
        if t_pos < best:  # polarity +1 (below -> positive): errors = S- + (T+ - S+)
            best = t_pos
            best_p = 1
        s_pos = 0.0
        s_neg = 0.0
        for k in range(1, n + 1):
            i = order[f, k - 1]
            if positive[i]:
                s_pos += weights[i]
            else:
                s_neg += weights[i]
            if k < n and values[f, order[f, k]] == values[f, i]:
                continue
            e_neg = s_pos + (t_neg - s_neg)
            e_pos = s_neg + (t_pos - s_pos)
            if e_neg < best:
                best = e_neg
                best_k = k
                best_p = -1
            if e_pos < best:
                best = e_pos
                best_k = k
                best_p = 1
        err_out[f] = best
        split_out[f] = best_k
        pol_out[f] = best_p


def best_stumps(
    values: np.ndarray, order: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal stump of every feature in one pass over its sorted values.

    Args:
        values: float32 ``[F, N]`` feature values.
        order: int ``[F, N]``, ``np.argsort(values, axis=1)``.
        labels: ``[N]``, 1 for positives (faces), 0 for negatives.
        weights: ``[N]`` sample weights.

    Returns:
        ``(errors [F] float64, splits [F] int64, polarities [F] int8)``: the least weighted
        error of each feature, its split (the number of sorted samples below the threshold)
        and polarity (``+1``: positive when ``value < threshold``; ``-1``: positive when
        ``value >= threshold``). Turn a split into a threshold with :func:`stump_threshold`.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    order = np.ascontiguousarray(order, dtype=np.int64)
    labels = np.asarray(labels).astype(np.bool_)
    weights = np.asarray(weights, dtype=np.float64)
    f, n = values.shape
    if order.shape != (f, n) or labels.shape != (n,) or weights.shape != (n,):
        raise ValueError(
            f"best_stumps: values {values.shape}, order {order.shape}, labels "
            f"{labels.shape} and weights {weights.shape} do not agree"
        )
    err = np.empty(f, np.float64)
    split = np.empty(f, np.int64)
    pol = np.empty(f, np.int8)
    parallel_map(
        lambda b: _best_stumps_kernel(b[0], b[1], values, order, labels, weights, err, split, pol),
        bands(f),
    )
    return err, split, pol


def stump_threshold(sorted_values: np.ndarray, split: int) -> np.float32:
    """A float32 threshold ``t`` with exactly ``split`` of the sorted values ``< t``."""
    v = np.asarray(sorted_values, dtype=np.float32)
    if split <= 0:
        return v[0]
    if split >= len(v):
        return np.nextafter(v[-1], np.float32(np.inf))
    lo, hi = v[split - 1], v[split]
    mid = np.float32((np.float64(lo) + np.float64(hi)) / 2)
    return mid if mid > lo else hi


@dataclass
class AdaBoostResult:
    """A boosted classifier ``sum_t alpha_t h_t(x) >= threshold`` over stumps.

    Attributes:
        features: int ``[T]`` chosen feature per round.
        thresholds: float32 ``[T]``.
        polarities: int8 ``[T]`` (``+1``: ``h = 1`` when ``value < threshold``).
        alphas: float32 ``[T]`` votes, ``log(1 / beta)``.
        errors: float64 ``[T]`` weighted training errors.
        threshold: the paper's default ``0.5 * sum(alpha)``.
    """

    features: np.ndarray
    thresholds: np.ndarray
    polarities: np.ndarray
    alphas: np.ndarray
    errors: np.ndarray
    threshold: float = field(default=0.0)

    def decision(self, values: np.ndarray) -> np.ndarray:
        """``sum_t alpha_t h_t`` (float64, accumulated in round order) for values ``[F, N]``."""
        n = values.shape[1]
        score = np.zeros(n, np.float64)
        for f, t, p, a in zip(self.features, self.thresholds, self.polarities, self.alphas):
            below = values[f] < t
            score += np.where(below == (p > 0), np.float64(a), 0.0)
        return score

    def predict(self, values: np.ndarray) -> np.ndarray:
        return self.decision(values) >= self.threshold


class AdaBoost:
    """Round-by-round AdaBoost over a fixed feature-value matrix (for cascade training).

    Args:
        values: float32 ``[F, N]`` feature values of the training samples.
        labels: ``[N]`` (1 positive, 0 negative).
        order: optional presorted ``np.argsort(values, axis=1)``.
    """

    def __init__(
        self, values: np.ndarray, labels: np.ndarray, order: np.ndarray | None = None
    ) -> None:
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.labels = np.asarray(labels).astype(np.bool_)
        n_pos = int(self.labels.sum())
        n_neg = len(self.labels) - n_pos
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"AdaBoost needs positives and negatives, got {n_pos} and {n_neg}")
        self.order = (
            np.argsort(self.values, axis=1, kind="stable")
            if order is None
            else np.ascontiguousarray(order)
        )
        self.weights = np.where(self.labels, 1.0 / (2 * n_pos), 1.0 / (2 * n_neg))
        self.scores = np.zeros(len(self.labels), np.float64)
        self.chosen: list[tuple[int, np.float32, int, np.float32, float]] = []

    def step(self) -> tuple[int, np.float32, int, np.float32, float]:
        """One boosting round; returns ``(feature, threshold, polarity, alpha, error)``."""
        self.weights /= self.weights.sum()
        err, split, pol = best_stumps(self.values, self.order, self.labels, self.weights)
        f = int(np.argmin(err))
        eps = float(np.clip(err[f], EPS_CLAMP, 1 - EPS_CLAMP))
        thr = stump_threshold(self.values[f, self.order[f]], int(split[f]))
        p = int(pol[f])
        h = (self.values[f] < thr) == (p > 0)
        beta = eps / (1 - eps)
        alpha = np.float32(np.log(1 / beta))
        correct = h == self.labels
        self.weights = np.where(correct, self.weights * beta, self.weights)
        self.scores += np.where(h, np.float64(alpha), 0.0)
        self.chosen.append((f, thr, p, alpha, float(err[f])))
        return self.chosen[-1]

    def result(self) -> AdaBoostResult:
        if not self.chosen:
            raise ValueError("no boosting round has been run")
        f, t, p, a, e = zip(*self.chosen)
        alphas = np.array(a, np.float32)
        return AdaBoostResult(
            np.array(f, np.int64),
            np.array(t, np.float32),
            np.array(p, np.int8),
            alphas,
            np.array(e, np.float64),
            float(0.5 * alphas.astype(np.float64).sum()),
        )


def adaboost(values: np.ndarray, labels: np.ndarray, rounds: int) -> AdaBoostResult:
    """Train ``rounds`` boosting rounds of decision stumps (paper's Table 1).

    Args:
        values: float32 ``[F, N]`` feature values.
        labels: ``[N]`` (1 positive, 0 negative).
        rounds: number of weak classifiers ``T``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    booster = AdaBoost(values, labels)
    for _ in range(rounds):
        booster.step()
    return booster.result()
