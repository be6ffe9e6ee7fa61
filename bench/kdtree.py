"""Benchmark: our kd-tree (exact and best-bin-first) against brute force on real SIFT descriptors.

Database: 10,000 OpenCV SIFT descriptors (128-d) pooled from opencv-doc's graf1.png and
box_in_scene.png and scikit-image photos (in the order listed in ``DATABASE_IMAGES``, cut at
10,000). Queries: the descriptors of graf3.png and box.png (the matching workload of the lab:
every query wants its 2 nearest neighbours for Lowe's ratio test).

Compared, all with k = 2 on the same queries:
    * brute force, NumPy/BLAS: ``|x|^2 - 2 q.x`` by one float32 GEMM, then ``argpartition``
      (exact here: SIFT descriptors are integers, so every product and sum is exact in float32);
    * brute force, numba: a linear scan computing every 128-d distance, on float32 storage (as
      the descriptors come; sums exact for these integers) and on float64 (as the tree stores
      the data for its exact distances);
    * brute force, OpenCV: ``cv2.BFMatcher(cv2.NORM_L2).knnMatch``;
    * our kd-tree, exact: on the principal axes (the default, leaf sizes 16 to 128), on the
      coordinate axes, and as one single leaf (no tree at all: every point screened over the
      principal axes, which shows what the tree itself adds);
    * our kd-tree, best-bin-first with a ``checks`` budget, and OpenCV's FLANN kd-tree
      (``cv2.FlannBasedMatcher``, 1 and 4 randomized trees) with the same budgets: time, recall
      of the exact nearest neighbour, and agreement of Lowe's ratio test (0.75) with the exact one.

Each timing is the median of ``--repeats`` runs, with ``--threads`` threads everywhere (numba,
BLAS through threadpoolctl, OpenCV); the methods' runs are interleaved round by round unless
``--sequential``.

Run: ``python bench/kdtree.py [--repeats 5] [--threads 1 2] [--sequential] [--out FILE.json]``
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
    "graf1.png",
    "box_in_scene.png",
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "horse",
    "grace_hopper",
    "brick",
    "grass",
    "gravel",
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


def medians(methods: dict, repeats: int, sequential: bool) -> dict[str, tuple[float, object]]:
    """Median wall time of each method over ``repeats`` runs.

    Interleaved (default): every round runs every method once, so a change in the machine's load
    during the run affects all of them alike, and no method finds its data hot in cache from its
    own previous run. Sequential: each method's runs back to back, after a warm-up run.
    """
    outputs = {name: fn() for name, fn in methods.items()}  # warm-up (numba cache, allocations)
    times: dict[str, list[float]] = {name: [] for name in methods}
    order = (
        [(name, r) for name in methods for r in range(repeats)]
        if sequential
        else [(name, r) for r in range(repeats) for name in methods]
    )
    for name, _ in order:
        if sequential and not times[name]:
            methods[name]()  # warm this method's data in cache, as a loop calling it would
        start = time.perf_counter()
        methods[name]()
        times[name].append(time.perf_counter() - start)
    return {name: (float(np.median(times[name])), outputs[name]) for name in methods}


def blas_knn(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    norms = (database * database).sum(axis=1)
    partial = norms[None, :] - 2.0 * (queries @ database.T)  # |x|^2 - 2 q.x; + |q|^2 is constant
    idx = np.argpartition(partial, 1, axis=1)[:, :2]
    vals = np.take_along_axis(partial, idx, axis=1)
    # Stable on (distance, index), the tree's tie rule.
    swap = (vals[:, 1] < vals[:, 0]) | ((vals[:, 1] == vals[:, 0]) & (idx[:, 1] < idx[:, 0]))
    idx[swap] = idx[swap][:, ::-1]
    return idx


@numba.njit(parallel=True, fastmath={"reassoc", "contract"})  # the tree's flags
def numba_brute_knn(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Linear scan: every distance, summed in the arrays' precision, 2 best kept."""
    out = np.empty((queries.shape[0], 2), dtype=np.int64)
    for q in numba.prange(queries.shape[0]):
        best_d = np.full((1, 2), np.inf)  # one row of the tree's k-best lists
        best_i = np.full((1, 2), np.iinfo(np.int64).max)
        query = queries[q]
        for i in range(database.shape[0]):
            acc = query[0] - query[0]  # a zero of the data's dtype
            for j in range(query.shape[0]):
                diff = database[i, j] - query[j]
                acc += diff * diff
            kd._offer(acc, i, best_d, best_i, 0)
        out[q] = best_i[0]
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


def ratio_agreement(
    dist: np.ndarray, idx: np.ndarray, exact_keep: np.ndarray, exact_idx: np.ndarray
) -> tuple[float, float]:
    """(recall, precision) of the approximate ratio-test matches against the exact ones."""
    keep = dist[:, 0] < RATIO * dist[:, 1]
    same = keep & exact_keep & (idx[:, 0] == exact_idx[:, 0])
    return float(same.sum() / max(1, exact_keep.sum())), float(same.sum() / max(1, keep.sum()))


def run(
    database: np.ndarray, queries: np.ndarray, threads: int, repeats: int, sequential: bool
) -> dict:
    numba.set_num_threads(threads)
    cv2.setNumThreads(threads)
    wide_db, wide_q = database.astype(np.float64), queries.astype(np.float64)
    with threadpool_limits(threads):
        tree = kd.KDTree(database)
        default = f"kd-tree exact (principal axes, leaf {tree.leaf_size}, default)"
        trees = {default: tree}
        for leaf in (16, 32, 128, len(database)):
            name = (
                "no tree: one leaf, every point screened over the principal axes"
                if leaf == len(database)
                else f"kd-tree exact (principal axes, leaf {leaf})"
            )
            trees[name] = kd.KDTree(database, leaf_size=leaf)
        trees["kd-tree exact (coordinate axes, leaf 64)"] = kd.KDTree(database, principal_axes=None)
        exact = {
            name: (lambda t=t: t.query(queries, k=2, return_counts=True))
            for name, t in trees.items()
        }
        brute = {
            "brute force NumPy/BLAS (float32 GEMM)": lambda: blas_knn(database, queries),
            "brute force numba float32 (linear scan)": lambda: numba_brute_knn(database, queries),
            "brute force numba float64 (the tree's exact kernel)": lambda: numba_brute_knn(
                wide_db, wide_q
            ),
            "brute force cv2.BFMatcher": lambda: cv2_bf_knn(database, queries),
        }
        build = {"build kd-tree (principal axes, leaf 64)": lambda: kd.KDTree(database)}
        approximate = {}
        for checks in (32, 64, 128, 256, 512, 1024):
            approximate[f"kd-tree BBF checks={checks}"] = lambda c=checks: tree.query(
                queries, k=2, checks=c
            )
            for n_trees in (1, 4):
                matcher = cv2.FlannBasedMatcher(
                    {"algorithm": 1, "trees": n_trees}, {"checks": checks}
                )
                matcher.add([database])
                matcher.train()
                approximate[f"cv2 FLANN {n_trees} tree(s) checks={checks}"] = lambda m=matcher: (
                    flann_knn(m, queries)
                )
        timed = medians({**build, **exact, **brute, **approximate}, repeats, sequential)

    rows: dict[str, dict] = {}
    for name in build:
        rows[name] = {"seconds": timed[name][0]}
    exact_d, exact_i, _ = timed[default][1]
    for name in exact:
        t, (_, idx, cnt) = timed[name]
        rows[name] = {
            "seconds": t,
            "points_examined": float(cnt[:, 0].mean()),
            "exact_distances": float(cnt[:, 1].mean()),
            "boxes": float(cnt[:, 2].mean()),
            "identical": bool(np.array_equal(idx, exact_i)),
        }
    for name in brute:
        t, out = timed[name]
        idx = out[0] if isinstance(out, tuple) else out
        rows[name] = {
            "seconds": t,
            "nn1_identical": float((idx[:, 0] == exact_i[:, 0]).mean()),
            "identical": bool(np.array_equal(idx, exact_i)),
        }
    exact_keep = exact_d[:, 0] < RATIO * exact_d[:, 1]
    for name in approximate:
        t, out = timed[name]
        d, i = out if name.startswith("kd-tree") else out[::-1]
        rec, prec = ratio_agreement(d, i, exact_keep, exact_i)
        rows[name] = {
            "seconds": t,
            "recall_nn1": float((i[:, 0] == exact_i[:, 0]).mean()),
            "ratio_recall": rec,
            "ratio_precision": prec,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="time each method's repeats back to back instead of interleaved",
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    database, queries = descriptors()
    print(
        f"database {database.shape}, queries {queries.shape}, "
        f"integer-valued: {bool(np.all(database == np.round(database)))}"
    )
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "numba": numba.__version__,
        },
        "database": list(database.shape),
        "queries": list(queries.shape),
        "repeats": args.repeats,
        "sequential": args.sequential,
        "runs": {},
    }
    for threads in args.threads:
        rows = run(database, queries, threads, args.repeats, args.sequential)
        results["runs"][str(threads)] = rows
        blas = rows["brute force NumPy/BLAS (float32 GEMM)"]["seconds"]
        numba_bf = rows["brute force numba float32 (linear scan)"]["seconds"]
        mode = "sequential" if args.sequential else "interleaved"
        print(f"\n{threads} thread(s), {mode}; {len(queries)} queries")
        print("| method | total s | us/query | speed vs BLAS brute | vs numba f32 brute | other |")
        print("|---|---|---|---|---|---|")
        for name, row in rows.items():
            sec = row["seconds"]
            extra = ", ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in row.items()
                if k != "seconds"
            )
            if name.startswith("build"):
                print(f"| {name} | {sec:.3f} | | | | |")
                continue
            print(
                f"| {name} | {sec:.3f} | {1e6 * sec / len(queries):.1f} | "
                f"{blas / sec:.2f}x | {numba_bf / sec:.2f}x | {extra} |"
            )
    results["load_average_end"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
