"""A tiny trained embedding run and identity folders, shared by the gallery tests."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from modernvision.data import load_arrays


def _train(run_dir, **kw):
    from modernvision.engine.jobs import train
    from modernvision.engine.jobs.configs import EmbeddingConfig

    cfg = EmbeddingConfig(**({"data": "digits", "epochs": 1, "batch_size": 8, "k": 4,
                              "train_subset": 160, "eval_subset": 60, "augment": False,
                              "embedding_dim": 16, "run_dir": str(run_dir), "device": "cpu"}
                             | kw))
    return train(cfg, log=lambda _m: None, progress=False)


@pytest.fixture(scope="session")
def embedding_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "emb16"
    _train(run)
    return run


@pytest.fixture(scope="session")
def embedding_run_8d(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "emb8"
    _train(run, embedding_dim=8, train_subset=64)
    return run


@pytest.fixture(scope="session")
def identity_dir(tmp_path_factory):
    """``root/<digit name>/<i>.png``: 3 images each of the held-out digits 5-7, and one more
    image of each as a query (``queries/<digit>.png``)."""
    root = tmp_path_factory.mktemp("people")
    data = load_arrays("digits", "test")
    for c in (5, 6, 7):
        idx = np.where(data.labels == c)[0]
        (root / "gallery" / f"digit{c}").mkdir(parents=True)
        for j, i in enumerate(idx[:3]):
            cv2.imwrite(str(root / "gallery" / f"digit{c}" / f"{j}.png"), data.images[i])
        (root / "queries").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "queries" / f"digit{c}.png"), data.images[idx[3]])
    return root
