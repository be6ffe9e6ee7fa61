"""Plots of a run: loss and metric curves, confusion matrices (PNG, matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Sequence[dict[str, float]], out_dir: str | Path) -> list[Path]:
    """Write ``loss.png`` (train/val losses) and ``metrics.png`` (other val metrics)."""
    out_dir = Path(out_dir)
    if not history:
        return []
    plt = _pyplot()
    epochs = [int(m["epoch"]) for m in history]
    keys = sorted({k for m in history for k in m})
    written = []
    loss_keys = [k for k in keys if k.endswith("loss") or "_loss_" in k]
    metric_keys = [k for k in keys if k.startswith("val_") and k not in loss_keys]
    for fname, group, ylabel in (("loss.png", loss_keys, "loss"),
                                 ("metrics.png", metric_keys, "value")):
        if not group:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for k in group:
            ys = [m.get(k, np.nan) for m in history]
            ax.plot(epochs, ys, marker="o", label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], path: str | Path, *,
                          title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted) with counts."""
    plt = _pyplot()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_overlap_counts(path: str | Path, *, size: int = 8) -> Path:
    """The checkerboard effect: per-pixel kernel overlap counts when upsampling a ``size``
    map by 2 with kernel 3 / stride 2 (uneven), kernel 4 / stride 2 and nearest resize + 3x3
    convolution (even); :func:`modernvision.layers.overlap_counts`."""
    from modernvision.layers.conv_transpose import overlap_counts

    plt = _pyplot()
    panels = [("transposed k3 s2", overlap_counts(size, kernel_size=3, stride=2)),
              ("transposed k4 s2 (pad 1)", overlap_counts(size, kernel_size=4, stride=2,
                                                          padding=1)),
              ("resize x2 + 3x3 conv", overlap_counts(size, kernel_size=3, stride=2,
                                                      resize_conv=True))]
    vmax = max(float(c.max()) for _, c in panels)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), dpi=100)
    for ax, (title, counts) in zip(axes, panels):
        im = ax.imshow(counts.numpy(), cmap="magma", vmin=0, vmax=vmax)
        inner = sorted({int(v) for v in counts[2:-2, 2:-2].flatten().tolist()})
        ax.set_title(f"{title}\ninterior counts {inner}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="kernel taps per output pixel")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
