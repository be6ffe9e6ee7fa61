"""The search loop: sample a child, train it briefly, reward = validation accuracy.

``method="controller"``: Zoph & Le's REINFORCE (see :mod:`.controller`); ``method="random"``:
each layer's filters and kernel uniform, each skip taken with probability 1/2 -- the same
space and the same budget of children, the baseline any search must beat.

Every child trains from the same seed on the same subset (the first ``train_images`` of the
data set's training split, in its fixed order) for ``epochs`` with Adam, and is scored on the
first ``val_images`` of the validation split. Written under ``out_dir``: ``children.jsonl``
(one line per child: index, arch, val_acc, params, seconds, best so far) and ``best.json``
(the best arch and how to rebuild it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError
from modernvision.nas.child import NASChild, SearchSpace
from modernvision.nas.controller import Controller

__all__ = ["SearchResult", "random_arch", "search"]


@dataclass
class SearchResult:
    children: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def random_arch(space: SearchSpace, rng: np.random.Generator) -> list[dict[str, Any]]:
    return [{"filters": int(rng.choice(space.filters)), "kernel": int(rng.choice(space.kernels)),
             "skips": [j for j in range(i - 1) if rng.random() < 0.5]}
            for i in range(space.num_layers)]


def _tensors(data: str, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from modernvision.data import load_arrays

    arrays = load_arrays(data, split)
    if arrays.images.ndim != 3:
        raise InvalidArgumentError(f"--data {data}: NAS children read grey images")
    x = torch.from_numpy(arrays.images[:n]).float().div(255.0).unsqueeze(1)
    return (x - 0.5) / 0.5, torch.from_numpy(arrays.labels[:n])


def train_child(arch: list[dict[str, Any]], data: tuple[torch.Tensor, ...], *, epochs: int,
                seed: int, num_classes: int, lr: float = 2e-3, batch_size: int = 64) -> float:
    """Validation accuracy of ``arch`` after ``epochs`` of Adam on the training tensors."""
    xtr, ytr, xva, yva = data
    torch.manual_seed(seed)
    model = NASChild(arch, num_classes=num_classes, in_channels=xtr.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(ytr), generator=gen)
        for s in range(0, len(ytr), batch_size):
            idx = perm[s:s + batch_size]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xva[s:s + 500]).argmax(1) for s in range(0, len(yva), 500)])
    return float((pred == yva).float().mean())


def search(budget: int, out_dir: str | Path, *, method: str = "controller", seed: int = 0,
           data: str = "fashion-mnist", train_images: int = 2000, val_images: int = 1000,
           epochs: int = 2, space: SearchSpace | None = None, controller_lr: float = 5e-3,
           baseline_decay: float = 0.8, entropy_weight: float = 1e-3,
           log=print) -> SearchResult:
    """Run a search of ``budget`` children (see the module docstring)."""
    if method not in ("controller", "random"):
        raise InvalidArgumentError(f"--search must be controller or random, got {method!r}")
    for name, v in (("--budget", budget), ("--train-images", train_images),
                    ("--val-images", val_images), ("--epochs", epochs)):
        if not isinstance(v, int) or v < 1:
            raise InvalidArgumentError(f"{name} must be a positive integer, got {v!r}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgumentError(f"--out {out} exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    space = space or SearchSpace()
    xtr, ytr = _tensors(data, "train", train_images)
    xva, yva = _tensors(data, "val", val_images)
    num_classes = int(max(ytr.max(), yva.max())) + 1
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    controller = Controller(space) if method == "controller" else None
    opt = (torch.optim.Adam(controller.parameters(), lr=controller_lr)
           if controller is not None else None)
    baseline: float | None = None
    result = SearchResult()
    with open(out / "children.jsonl", "w") as f:
        for index in range(budget):
            if controller is not None:
                arch, log_prob, entropy = controller.sample(gen)
            else:
                arch = random_arch(space, rng)
            start = time.perf_counter()
            acc = train_child(arch, (xtr, ytr, xva, yva), epochs=epochs, seed=seed,
                              num_classes=num_classes)
            seconds = time.perf_counter() - start
            if controller is not None:  # REINFORCE with a moving-average baseline
                baseline = acc if baseline is None else (
                    baseline_decay * baseline + (1 - baseline_decay) * acc)
                loss = -(acc - baseline) * log_prob - entropy_weight * entropy
                opt.zero_grad()
                loss.backward()
                opt.step()
            params = sum(p.numel() for p in NASChild(arch, num_classes=num_classes,
                                                     in_channels=xtr.shape[1]).parameters())
            if result.best is None or acc > result.best["val_acc"]:
                result.best = {"index": index, "arch": arch, "val_acc": acc}
            row = {"index": index, "method": method, "seed": seed, "arch": arch,
                   "val_acc": acc, "params": params, "seconds": round(seconds, 2),
                   "best_so_far": result.best["val_acc"]}
            result.children.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
            log(f"child {index + 1}/{budget}: val acc {acc:.4f} (best {row['best_so_far']:.4f}),"
                f" {params:,} params, {seconds:.1f} s")
    best = dict(result.best, data=data, train_images=train_images, val_images=val_images,
                epochs=epochs, method=method, seed=seed,
                rebuild="create('nas_cnn', arch=best['arch'], num_classes=...)",
                train_command="modernvision train --model nas_cnn --model-arg arch='"
                              + json.dumps(result.best["arch"]) + "'")
    (out / "best.json").write_text(json.dumps(best, indent=2))
    return result
