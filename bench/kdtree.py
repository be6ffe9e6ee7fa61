"""Benchmark: our kd-tree (exact and best-bin-first) against brute force on real SIFT descriptors.

Database: 10,000 OpenCV SIFT descriptors (128-d) pooled from opencv-doc's graf1.png and
box_in_scene.png and scikit-image photos (in the order listed in ``DATABASE_IMAGES``, cut at
10,000). Queries: the descriptors of graf3.png and box.png (the matching workload of the lab:
every query wants its 2 nearest neighbours for Lowe's ratio test).

Compared, all with k = 2 on the same queries:
    * brute force, NumPy/BLAS: ``|x|^2 - 2 q.x`` by one float32 GEMM, then ``argpartition``
      (exact here: SIFT descriptors are integers, so every product and sum is exact in float32);
    * brute force, numba: every 128-d distance with the very kernel the tree uses, no tree;
    * brute force, OpenCV: ``cv2.BFMatcher(cv2.NORM_L2).knnMatch``;
    * our kd-tree, exact: on the principal axes (the default) and on the coordinate axes;
    * our kd-tree, best-bin-first with a ``checks`` budget, and OpenCV's FLANN kd-tree
      (``cv2.FlannBasedMatcher``, 1 and 4 randomized trees) with the same budgets: time, recall
      of the exact nearest neighbour, and agreement of Lowe's ratio test (0.75) with the exact one.

Each timing is the median of ``--repeats`` runs, once with 1 thread everywhere and once with 2.

Run: ``python bench/kdtree.py [--repeats 5] [--out bench/kdtree.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import cv2
import numba
import numpy as np
from threadpoolctl import threadpool_limits

from modernvision.classic import kdtree as kd
from modernvision.classic.matching import sift_features
from modernvision.data import load_photo, opencv_sample

DATABASE_IMAGES = [
    "graf1.png", "box_in_scene.png", "astronaut", "camera", "coffee", "chelsea", "rocket",
    "coins", "horse", "grace_hopper", "brick", "grass", "gravel",
]
QUERY_IMAGES = ["graf3.png", "box.png"]
N_DATABASE = 10_000
RATIO = 0.75


def _image(name: str) -> np.ndarray:
    if name.endswith(".png"):
        return cv2.imread(str(opencv_sample(name)), cv2.IMREAD_GRAYSCALE)
    return load_photo(name)


def descriptors() -> tuple[np.ndarray, np.ndarray]:
    database = np.concatenate([sift_features(_image(n))[1] for n in DATABASE_IMAGES])
    if len(database) < N_DATABASE:
        raise RuntimeError(f"only {len(database)} descriptors in the database images")
    queries = np.concatenate([sift_features(_image(n))[1] for n in QUERY_IMAGES])
    return np.ascontiguousarray(database[:N_DATABASE]), queries


def median_time(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (numba loads its cache, FLANN and BLAS allocate)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def blas_knn(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    norms = (database * database).sum(axis=1)
    partial = norms[None, :] - 2.0 * (queries @ database.T)  # |x|^2 - 2 q.x; + |q|^2 is constant
    idx = np.argpartition(partial, 1, axis=1)[:, :2]
    vals = np.take_along_axis(partial, idx, axis=1)
    # Stable on (distance, index), the tree's tie rule.
    swap = (vals[:, 1] < vals[:, 0]) | ((vals[:, 1] == vals[:, 0]) & (idx[:, 1] < idx[:, 0]))
    idx[swap] = idx[swap][:, ::-1]
    return idx


@numba.njit(parallel=True)
def numba_brute_knn(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((queries.shape[0], 2), dtype=np.int64)
    for q in numba.prange(queries.shape[0]):
        best_d = np.full(2, np.inf)
        best_i = np.full(2, np.iinfo(np.int64).max)
        for i in range(database.shape[0]):
            kd._offer(kd._sqdist(database, i, queries[q]), i, best_d, best_i)
        out[q] = best_i
    return out


def cv2_bf_knn(database: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(queries, database, k=2)
    idx = np.array([[m.trainIdx for m in pair] for pair in matches])
    dist = np.array([[m.distance for m in pair] for pair in matches])
    return idx, dist


def flann_knn(matcher, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    matches = matcher.knnMatch(queries, k=2)
    idx = np.array([[m.trainIdx for m in pair] for pair in matches])
    dist = np.array([[m.distance for m in pair] for pair in matches])
    return idx, dist


def ratio_agreement(dist: np.ndarray, idx: np.ndarray, exact_keep: np.ndarray,
                    exact_idx: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of the approximate ratio-test matches against the exact ones."""
    keep = dist[:, 0] < RATIO * dist[:, 1]
    same = keep & exact_keep & (idx[:, 0] == exact_idx[:, 0])
    return float(same.sum() / max(1, exact_keep.sum())), float(same.sum() / max(1, keep.sum()))


def run(database: np.ndarray, queries: np.ndarray, threads: int, repeats: int) -> dict:
    numba.set_num_threads(threads)
    cv2.setNumThreads(threads)
    rows: dict[str, dict] = {}
    with threadpool_limits(threads):
        t, tree = median_time(lambda: kd.KDTree(database), repeats)
        rows["build kd-tree (principal axes)"] = {"seconds": t}
        t, plain = median_time(lambda: kd.KDTree(database, principal_axes=None), repeats)
        rows["build kd-tree (coordinate axes)"] = {"seconds": t}

        t, (exact_d, exact_i, counts) = median_time(
            lambda: tree.query(queries, k=2, return_counts=True), repeats)
        rows["kd-tree exact (principal axes)"] = {
            "seconds": t, "points_examined": float(counts[:, 0].mean()),
            "exact_distances": float(counts[:, 1].mean()), "boxes": float(counts[:, 2].mean())}
        t, (plain_d, plain_i, plain_counts) = median_time(
            lambda: plain.query(queries, k=2, return_counts=True), repeats)
        rows["kd-tree exact (coordinate axes)"] = {
            "seconds": t, "points_examined": float(plain_counts[:, 0].mean()),
            "boxes": float(plain_counts[:, 2].mean()),
            "identical_to_principal": bool(np.array_equal(plain_i, exact_i))}

        t, idx = median_time(lambda: blas_knn(database, queries), repeats)
        rows["brute force NumPy/BLAS (float32 GEMM)"] = {
            "seconds": t, "identical_to_tree": bool(np.array_equal(idx, exact_i))}
        t, idx = median_time(lambda: numba_brute_knn(database, queries), repeats)
        rows["brute force numba (tree's distance kernel)"] = {
            "seconds": t, "identical_to_tree": bool(np.array_equal(idx, exact_i))}
        t, (idx, dist) = median_time(lambda: cv2_bf_knn(database, queries), repeats)
        rows["brute force cv2.BFMatcher"] = {
            "seconds": t, "nn1_identical_to_tree": float((idx[:, 0] == exact_i[:, 0]).mean())}

        exact_keep = exact_d[:, 0] < RATIO * exact_d[:, 1]
        for checks in (32, 64, 128, 256, 512, 1024):
            t, (d, i) = median_time(lambda c=checks: tree.query(queries, k=2, checks=c), repeats)
            rec, prec = ratio_agreement(d, i, exact_keep, exact_i)
            rows[f"kd-tree BBF checks={checks}"] = {
                "seconds": t, "recall_nn1": float((i[:, 0] == exact_i[:, 0]).mean()),
                "ratio_recall": rec, "ratio_precision": prec}
            for trees in (1, 4):
                matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": trees},
                                                {"checks": checks})
                matcher.add([database])
                matcher.train()
                t, (i, d) = median_time(lambda m=matcher: flann_knn(m, queries), repeats)
                rec, prec = ratio_agreement(d, i, exact_keep, exact_i)
                rows[f"cv2 FLANN {trees} tree(s) checks={checks}"] = {
                    "seconds": t, "recall_nn1": float((i[:, 0] == exact_i[:, 0]).mean()),
                    "ratio_recall": rec, "ratio_precision": prec}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    database, queries = descriptors()
    print(f"database {database.shape}, queries {queries.shape}, "
          f"integer-valued: {bool(np.all(database == np.round(database)))}")
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "load_average": os.getloadavg(),
                    "numpy": np.__version__, "opencv": cv2.__version__,
                    "numba": numba.__version__},
        "database": list(database.shape), "queries": list(queries.shape),
        "repeats": args.repeats, "runs": {},
    }
    for threads in (1, 2):
        rows = run(database, queries, threads, args.repeats)
        results["runs"][str(threads)] = rows
        blas = rows["brute force NumPy/BLAS (float32 GEMM)"]["seconds"]
        numba_bf = rows["brute force numba (tree's distance kernel)"]["seconds"]
        print(f"\n{threads} thread(s); per-query times in microseconds over {len(queries)} queries")
        print("| method | total s | us/query | vs BLAS brute | vs numba brute | other |")
        print("|---|---|---|---|---|---|")
        for name, row in rows.items():
            sec = row["seconds"]
            extra = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in row.items() if k != "seconds")
            if name.startswith("build"):
                print(f"| {name} | {sec:.3f} | | | | |")
                continue
            print(f"| {name} | {sec:.3f} | {1e6 * sec / len(queries):.1f} | "
                  f"{blas / sec:.2f}x | {numba_bf / sec:.2f}x | {extra} |")
    results["load_average_end"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
