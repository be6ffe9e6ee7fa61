"""Demo section: recognise identities never seen in training (metric learning + a gallery).

Trains ``embedding_net`` with hard-mined triplets (the best in bench/metric_learning.md) on
MNIST digits 0-4 (a short schedule: 2 epochs, ~10-20 s on 2 cores), then treats digits 5-9 as
five new people: enrols 5 images of each in a gallery database and identifies 20 other images
of them by nearest neighbours, without retraining.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np


def demo_section(out: Path) -> list[str]:
    from modernvision.data import load_arrays
    from modernvision.engine.jobs import train
    from modernvision.engine.jobs.configs import EmbeddingConfig
    from modernvision.retrieval.gallery import Gallery, ImageEmbedder, enrol, vote

    out = Path(out)
    start = time.perf_counter()
    run_dir = out / "embedding-run"
    cfg = EmbeddingConfig(data="mnist-5k", epochs=2, batch_size=16, k=4, classes="0-4",
                          loss="triplet", mining="hard", augment=False, device="cpu",
                          run_dir=str(run_dir))
    result = train(cfg, overwrite=True, progress=False, log=lambda _m: None)
    lines = [f"embedding_net (hard-mined triplets) trained on digits 0-4 in "
             f"{result['train_seconds']:.0f} s; on the unseen digits 5-9 ({result['test_images']}"
             f" test images): Recall@1 {result['test_recall@1']:.3f}, MAP@R "
             f"{result['test_map_at_r']:.3f}"]

    data = load_arrays("mnist-5k", "test")
    people, queries = out / "people", []
    for c in range(5, 10):
        idx = np.where(data.labels == c)[0]
        (people / f"digit{c}").mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(idx[:5]):
            cv2.imwrite(str(people / f"digit{c}" / f"{j}.png"), data.images[i])
        for j, i in enumerate(idx[5:9]):
            path = out / "queries" / f"digit{c}_{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), data.images[i])
            queries.append((f"digit{c}", path))
    db = out / "gallery.npz"
    if db.exists():
        db.unlink()
    gallery, added = enrol(db, run_dir, people)
    embed = ImageEmbedder(run_dir)
    matches = gallery.search(embed([p for _, p in queries]), 3)
    correct = sum(vote(m) == name for (name, _), m in zip(queries, matches))
    first = queries[0][1]
    lines += [
        f"gallery {db}: {len(added)} new identities x 5 images enrolled, no retraining; "
        f"{correct}/{len(queries)} new images of them identified (3-NN vote)",
        f"e.g. {first.name} -> {vote(matches[0])} (nearest "
        f"{matches[0][0].identity} at {matches[0][0].distance:.3f}); the CLI: modernvision "
        f"gallery query --db {db} IMAGE -k 5",
        f"({time.perf_counter() - start:.1f} s; bench/metric_learning.md compares the losses)",
    ]
    assert isinstance(Gallery.load(db), Gallery)
    return lines
