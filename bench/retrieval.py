"""kNN search at gallery scale: exact PyTorch vs faiss flat / IVF / HNSW (bench/retrieval.md).

Synthetic embeddings stand in for a real gallery: ``N / 10`` identities with 10 images each,
every image a noisy copy of its identity's centre on the unit sphere (64-d, like the embedding
nets here); queries are fresh noisy images of enrolled identities. For each gallery size and
backend: build time, single-query latency (median over ``--latency-queries`` queries asked one
at a time), batch throughput (``--queries`` at once, ms per query) and recall@1 versus exact
search (the fraction of queries whose nearest neighbour is the exact one's).

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 python bench/retrieval.py \
        --sizes 10000 100000 1000000 --out bench/results/retrieval.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from modernvision.retrieval.index import KNNIndex


def synthetic(n: int, dim: int, *, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = n // 10
    centres = rng.standard_normal((ids, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(ids), 10)
    x = centres[labels] + rng.standard_normal((n, dim)).astype(np.float32) * (noise / dim ** .5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q_lab = rng.integers(0, ids, 2000)
    q = centres[q_lab] + rng.standard_normal((2000, dim)).astype(np.float32) * (noise / dim ** .5)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


CONFIGS = {
    "exact": {},
    "faiss-flat": {},
    "faiss-ivf": {"nprobe": 16},
    "faiss-hnsw": {"hnsw_m": 32, "ef_construction": 64, "ef_search": 64},
}


def run(size: int, backends: list[str], args) -> list[dict]:
    x, q = synthetic(size, args.dim, noise=args.noise, seed=0)
    rows, exact_top1 = [], None
    for backend in backends:
        t0 = time.perf_counter()
        index = KNNIndex(args.dim, backend=backend, **CONFIGS[backend])
        index.add(x)
        build = time.perf_counter() - t0
        batch = q[:args.queries]
        index.search(batch[:8], 10)  # warm-up (the exact backend concatenates on first search)
        t0 = time.perf_counter()
        _, top = index.search(batch, 10)
        batch_ms = (time.perf_counter() - t0) / len(batch) * 1000
        lat = []
        for i in range(args.latency_queries):
            one = q[args.queries + i:args.queries + i + 1]
            t0 = time.perf_counter()
            index.search(one, 10)
            lat.append((time.perf_counter() - t0) * 1000)
        top1 = top[:, 0]
        if backend == "exact":
            exact_top1 = top1
        recall = float((top1 == exact_top1).float().mean()) if exact_top1 is not None else None
        row = {"size": size, "backend": backend, "params": CONFIGS[backend],
               "build_s": build, "latency_ms_median": statistics.median(lat),
               "batch_ms_per_query": batch_ms, "recall_at_1_vs_exact": recall}
        print(json.dumps(row), flush=True)
        rows.append(row)
        del index
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--backends", nargs="+", default=list(CONFIGS))
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--noise", type=float, default=0.6,
                   help="noise norm around each identity centre (unit vectors)")
    p.add_argument("--queries", type=int, default=1000, help="batch size of the batch timing")
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    print(f"torch threads {torch.get_num_threads()}", flush=True)
    rows = [r for size in args.sizes for r in run(size, args.backends, args)]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
