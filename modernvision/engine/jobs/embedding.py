"""The embedding job: metric learning on some classes, retrieval on the classes held out.

Face recognition cannot be a classifier over everyone: people are added after training. So a
network learns an embedding in which distance means identity, and a new identity is recognised
by nearest neighbours among enrolled images. No labelled face identities exist offline, so the
classes of a built-in data set stand in for identities: ``--classes`` are trained on; the test
retrieval runs only on the other classes, which the network never saw.

Batches are ``P x K``: each training item is a *group* of ``K`` images of one class (``--k``) and
a batch holds ``P`` groups (``--batch-size``). The groups are a fixed, seeded partition of each
class's images (every image once per epoch); the data order shuffles which groups meet in a
batch. (For P distinct identities per batch with groups redrawn every epoch, see
:class:`~modernvision.losses.metric.PKSampler`.) Validation: leave-one-out retrieval on the
validation images of the training classes; test: on the held-out classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_arrays
from modernvision.data.torch_datasets import ArrayImageDataset, load_image
from modernvision.data.transforms import build_transforms
from modernvision.engine import distributed as dist_utils
from modernvision.engine.jobs.base import DataParts, Job, LoadedRun, register_job
from modernvision.engine.jobs.configs import EmbeddingConfig, parse_classes
from modernvision.losses.metric import OnlineContrastiveLoss, OnlineTripletLoss
from modernvision.models import create


class EmbeddingTask(nn.Module):
    """An embedding network trained with a metric-learning loss (or cross-entropy).

    Training: ``forward(images, labels) -> {"loss_<kind>": ...}``; images ``(B, C, H, W)`` or
    ``P x K`` groups ``(P, K, C, H, W)`` with labels ``(P, K)``. Inference: ``forward(images)
    -> (B, embedding_dim)`` unit-length embeddings.

    Args:
        net: an :class:`~modernvision.models.metric.embedding.EmbeddingNet` (``project``,
            ``forward``, ``embedding_dim``).
        loss: ``triplet`` | ``contrastive`` | ``cross_entropy``.
        mining: the triplet mining (``OnlineTripletLoss``'s).
        margin: the loss's margin.
        train_classes: the labels trained on (cross-entropy maps them to ``0..C-1``).
    """

    def __init__(self, net: nn.Module, *, loss: str, mining: str, margin: float | None,
                 train_classes: list[int]) -> None:
        super().__init__()
        self.net, self.loss_kind = net, loss
        self.embedding_dim = int(net.embedding_dim)
        if loss == "triplet":
            self.criterion: nn.Module = OnlineTripletLoss(margin, mining=mining)
        elif loss == "contrastive":
            self.criterion = OnlineContrastiveLoss(margin)
        else:
            self.classifier = nn.Linear(self.embedding_dim, len(train_classes))
            lookup = torch.full((max(train_classes) + 1,), -1, dtype=torch.long)
            lookup[torch.tensor(train_classes)] = torch.arange(len(train_classes))
            self.register_buffer("class_index", lookup, persistent=False)

    def forward(self, images: Tensor, targets: Tensor | None = None):
        if images.dim() == 5:  # (P, K, C, H, W) -> (P * K, C, H, W)
            images = images.flatten(0, 1)
            targets = targets.flatten() if targets is not None else None
        if targets is None:
            return self.net(images)
        if self.loss_kind == "cross_entropy":
            logits = self.classifier(self.net.project(images).float())
            return {"loss_ce": F.cross_entropy(logits, self.class_index[targets])}
        return {f"loss_{self.loss_kind}": self.criterion(self.net(images), targets)}


class IdentityGroups(Dataset):
    """Items ``(images (K, C, H, W), labels (K,))``: ``K`` images of one class each.

    Each class's images are shuffled (``seed``) and cut into groups of ``K``; a last partial
    group is filled up with the class's first images.
    """

    def __init__(self, images: ArrayImageDataset, labels: np.ndarray, k: int, *,
                 seed: int = 0) -> None:
        self.images, self.k = images, k
        rng = np.random.default_rng(seed)
        self.groups: list[np.ndarray] = []
        for c in np.unique(labels):
            idx = rng.permutation(np.where(labels == c)[0])
            for start in range(0, len(idx), k):
                group = idx[start:start + k]
                if len(group) < k:
                    group = np.concatenate([group, np.resize(idx, k - len(group))])
                self.groups.append(group)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int):
        items = [self.images[int(j)] for j in self.groups[i]]
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


class RetrievalEvaluator:
    """Leave-one-out retrieval over the embeddings of a data set: Recall@1/5, precision@1,
    R-precision and MAP@R (:func:`~modernvision.retrieval.metrics.retrieval_metrics`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._emb: list[Tensor] = []
        self._labels: list[Tensor] = []

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        self._emb.append(predictions.detach().float().cpu())
        self._labels.append(targets.detach().cpu())

    def compute(self) -> dict[str, float]:
        from modernvision.retrieval.metrics import retrieval_metrics

        if not self._emb:
            raise ValueError("RetrievalEvaluator.compute() before any update()")
        parts = dist_utils.all_gather_object((torch.cat(self._emb), torch.cat(self._labels)))
        emb = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        out = retrieval_metrics(emb, labels, ks=(1, 5))
        out.pop("queries")
        return out


def _split(cfg: EmbeddingConfig, split: str, classes: list[int], data: str | None = None):
    arrays = load_arrays(data or cfg.data, split)
    keep = np.isin(arrays.labels, classes)
    arrays = arrays.subset(np.where(keep)[0])
    if split == "train" and cfg.train_subset is not None:
        arrays = arrays.subset(np.arange(min(cfg.train_subset, len(arrays))))
    elif split != "train" and cfg.eval_subset is not None:
        # evenly over the set, so a subset keeps every class
        step = max(1, len(arrays) // cfg.eval_subset)
        arrays = arrays.subset(np.arange(0, len(arrays), step)[:cfg.eval_subset])
    return arrays


def _transform(cfg: EmbeddingConfig, *, train: bool, data: str | None = None):
    return build_transforms(data or cfg.data, train=train, image_size=cfg.image_size,
                            channels=cfg.channels, augment=cfg.augment)


def _eval_dataset(cfg: EmbeddingConfig, arrays, data: str | None = None) -> ArrayImageDataset:
    return ArrayImageDataset(arrays, _transform(cfg, train=False, data=data), precompute=True)


def class_split(cfg: EmbeddingConfig, num_classes: int) -> tuple[list[int], list[int]]:
    """``(training classes, held-out classes)`` of ``--classes``."""
    train = parse_classes(cfg.classes)
    if max(train) >= num_classes:
        raise InvalidArgumentError(f"--classes {cfg.classes}: {cfg.data} has classes "
                                   f"0-{num_classes - 1}")
    held_out = [c for c in range(num_classes) if c not in train]
    return train, held_out


@register_job
class EmbeddingJob(Job):
    name = "embedding"
    monitor = ("val_map_at_r", "max")
    predict_options = frozenset({"out"})
    eval_batch_size = 512

    def build_data(self, cfg: EmbeddingConfig) -> DataParts:
        train_arrays = load_arrays(cfg.data, "train")
        classes = list(train_arrays.classes)
        train_classes, held_out = class_split(cfg, len(classes))
        train = _split(cfg, "train", train_classes)
        # Deterministic pipelines run once over the set instead of once per epoch.
        images = ArrayImageDataset(train, _transform(cfg, train=True),
                                   precompute=not cfg.augment)
        groups = IdentityGroups(images, train.labels, cfg.k, seed=cfg.seed)
        val = _eval_dataset(cfg, _split(cfg, "val", train_classes))
        test_classes = held_out or train_classes
        test = _eval_dataset(cfg, _split(cfg, cfg.test_split, test_classes))
        native = int(train.images.shape[1])
        meta = {"classes": classes, "train_classes": train_classes,
                "test_classes": test_classes, "image_size": cfg.image_size or native,
                "embedding_dim": cfg.embedding_dim}
        return DataParts(train=groups, val=val, test=test, meta=meta)

    def build_model(self, cfg: EmbeddingConfig, meta: dict, *,
                    pretrained: bool = True) -> nn.Module:
        kwargs = dict(cfg.model_kwargs)
        kwargs.setdefault("embedding_dim", cfg.embedding_dim)
        kwargs.setdefault("backbone", cfg.backbone)
        kwargs.setdefault("in_channels", cfg.channels)
        kwargs.setdefault("small_input", True)
        net = create(cfg.model, weights=cfg.weights if pretrained else None, **kwargs)
        return EmbeddingTask(net, loss=cfg.loss, mining=cfg.mining, margin=cfg.resolved_margin,
                             train_classes=list(meta["train_classes"]))

    def build_evaluator(self, cfg: EmbeddingConfig, meta: dict,
                        dataset: Dataset) -> RetrievalEvaluator:
        return RetrievalEvaluator()

    def split_dataset(self, cfg: EmbeddingConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        classes = meta["test_classes"] if split == "test" else meta["train_classes"]
        return _eval_dataset(cfg, _split(cfg, split, classes, data), data)

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test retrieval on held-out classes: Recall@1 {metrics['test_recall@1']:.4f}, "
                f"Recall@5 {metrics['test_recall@5']:.4f}, MAP@R {metrics['test_map_at_r']:.4f}"
                f" on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        """Each image's embedding; with ``out`` (a folder) also ``embeddings.npy`` ``[N, D]``
        and ``images.txt`` (one path per row)."""
        embed = image_embedder(run)
        embeddings = embed(paths)
        if options.get("out") is not None:
            folder = Path(options["out"])
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / "embeddings.npy", embeddings.numpy())
            (folder / "images.txt").write_text("".join(f"{p}\n" for p in paths))
        out = []
        for path, emb in zip(paths, embeddings):
            head = ", ".join(f"{v:+.3f}" for v in emb[:4].tolist())
            out.append({"image": str(path), "embedding": emb.tolist(),
                        "text": f"{path}: embedding [{emb.numel()}] ({head}, ...)"})
        return out


def image_transform(run: LoadedRun):
    """The run's test-time preprocessing for one PIL image."""
    cfg = run.cfg
    return build_transforms(cfg.data, train=False, image_size=int(run.meta["image_size"]),
                            channels=cfg.channels)


def image_embedder(run: LoadedRun, *, batch_size: int = 256):
    """A function ``paths -> (N, embedding_dim)`` embeddings with the run's preprocessing."""
    tf = image_transform(run)
    mode = "L" if run.cfg.channels == 1 else "RGB"
    device = next(run.model.parameters()).device

    def embed(paths: list[Path]) -> Tensor:
        x = torch.stack([tf(load_image(p, mode=mode)) for p in paths])
        with torch.no_grad():
            return torch.cat([run.model(x[i:i + batch_size].to(device)).float().cpu()
                              for i in range(0, len(x), batch_size)])

    return embed
