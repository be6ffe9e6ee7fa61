"""The Trainer: a small explicit loop over ``run_step``, with hooks.

A batch is ``(inputs, targets)``. In training mode the model (or a task wrapper such as
:class:`~modernvision.engine.tasks.ClassificationTask`) is called as ``model(inputs, targets)``
and returns a dict of losses; their sum is minimised. Validation calls ``model(inputs)`` in eval
mode and hands the predictions to an :class:`~modernvision.engine.evaluation.Evaluator`.

Everything a run needs to continue is checkpointed atomically at the end of every epoch (model,
optimizer, scheduler, hooks, epoch, history, RNG states) *before* the epoch is reported, so an
epoch that was printed is never lost and ``fit(resume=...)`` continues to the same result as an
uninterrupted run. A run can be extended past its end with a new schedule segment (see
``schedule_segment``). Under ``torchrun`` the model is wrapped in DDP, data is sharded with a
distributed sampler, evaluators reduce or gather across ranks, and only rank 0 writes or prints.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from modernvision.engine import distributed as dist_utils
from modernvision.engine.checkpoint import (
    CheckpointError,
    atomic_save,
    atomic_write_text,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from modernvision.engine.evaluation import Evaluator
from modernvision.engine.hooks import Hook

SchedulerFactory = Callable[[torch.optim.Optimizer, int], Any]


class _ShardSampler(Sampler[int]):
    """Every ``world``-th index from ``rank``, in order, without padding (exact evaluation)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _move(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: _move(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_move(v, device, channels_last) for v in batch)
    return batch


def _call(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (list, tuple)):
        return model(*batch)
    return model(batch)


def _batch_size(batch: Any) -> int:
    """Images in a batch: ``(images, targets)`` with images a tensor ``[B, ...]`` or a list of B
    image tensors (detection), or a dict whose first value is such."""
    first = batch
    if isinstance(batch, dict) and batch:
        first = next(iter(batch.values()))
    elif isinstance(batch, (list, tuple)) and batch:
        first = batch[0]
    if isinstance(first, Tensor):
        return first.shape[0] if first.dim() else 1
    if isinstance(first, (list, tuple)):
        return len(first)
    return 1


class Trainer:
    """Train any model that returns a loss dict.

    Args:
        model: called as ``model(*batch)`` (or ``model(**batch)``); returns ``dict[str, Tensor]``
            of losses in training mode; in eval mode ``model(inputs)`` returns predictions.
        optimizer: built on ``model.parameters()`` (param groups welcome).
        train_set: a map-style dataset.
        val_set: optional validation dataset of ``(inputs, targets)`` items (metrics are
            prefixed ``val_``); needs ``evaluator``.
        evaluator: scores eval-mode predictions (reset / update / compute).
        epochs: total number of epochs.
        batch_size: global batch size (split across ranks under torchrun).
        scheduler: an LR scheduler, or a factory ``(optimizer, steps_per_epoch) -> scheduler``.
        scheduler_interval: ``"step"`` (call ``scheduler.step()`` every iteration) or ``"epoch"``.
        hooks: e.g. :class:`~modernvision.engine.hooks.EarlyStopping`.
        run_dir: the run folder (config.json, metrics.jsonl, checkpoints/, plots); None writes
            nothing.
        device: defaults to CUDA when available.
        amp: bf16 autocast; defaults to on for CUDA, off on CPU.
        channels_last: image batches and weights in NHWC layout; defaults to on (faster on CUDA
            tensor cores and on CPU oneDNN kernels, e.g. max-pooling).
        grad_clip_norm: clip the global gradient norm to this value.
        num_workers: DataLoader workers.
        seed: shuffling seed (the order of epoch ``e`` depends only on ``seed`` and ``e``).
        config: the fully resolved run configuration, saved as ``config.json``.
        collate_fn: DataLoader collate function (detection batches need one).
        progress: show a tqdm bar per epoch; ``None`` (default) shows it only when stderr is a
            terminal (files and CI logs get one line per epoch, no carriage returns).
        schedule_segment: which schedule segment this trainer's ``scheduler`` is (0 for the
            run's own; ``k`` for its ``k``-th extension). A checkpoint from another segment
            restores everything but the scheduler, and the lr restarts at the new schedule.
        log: where messages go (default ``print`` on rank 0).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_set: Dataset,
        *,
        val_set: Dataset | None = None,
        evaluator: Evaluator | None = None,
        epochs: int,
        batch_size: int,
        scheduler: Any | SchedulerFactory | None = None,
        scheduler_interval: str = "step",
        hooks: Sequence[Hook] = (),
        run_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        amp: bool | None = None,
        channels_last: bool | None = None,
        grad_clip_norm: float | None = None,
        num_workers: int = 0,
        seed: int = 0,
        config: dict | None = None,
        collate_fn: Callable | None = None,
        eval_batch_size: int | None = None,
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
        schedule_segment: int = 0,
    ) -> None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got "
                             f"{scheduler_interval!r}")
        if grad_clip_norm is not None and grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be > 0, got {grad_clip_norm}")
        if val_set is not None and evaluator is None:
            raise ValueError("a val_set needs an evaluator to score it (e.g. "
                             "ClassificationEvaluator(num_classes))")
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.distributed = dist_utils.init_distributed(self.device)
        self.world, self.rank = dist_utils.world_size(), dist_utils.rank()
        if batch_size % self.world:
            raise ValueError(f"batch_size {batch_size} must be divisible by the world size "
                             f"{self.world}")
        self.amp = self.device.type == "cuda" if amp is None else amp
        self.channels_last = True if channels_last is None else channels_last

        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.unwrapped = model
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model: nn.Module = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        else:
            self.model = model
        self.optimizer = optimizer
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.grad_clip_norm = grad_clip_norm
        self.hooks = list(hooks)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if progress is None:
            progress = sys.stderr.isatty()
        self.progress = progress and self.rank == 0
        self.evaluator = evaluator
        self.schedule_segment = schedule_segment
        self._log = log or print
        self.config = dict(config or {})

        self.sampler = DistributedSampler(train_set, num_replicas=self.world, rank=self.rank,
                                          shuffle=True, seed=seed, drop_last=False)
        pin = self.device.type == "cuda"
        self.train_loader = DataLoader(train_set, batch_size=batch_size // self.world,
                                       sampler=self.sampler, num_workers=num_workers,
                                       collate_fn=collate_fn, pin_memory=pin, drop_last=False,
                                       persistent_workers=num_workers > 0)
        self._eval_loader_args = dict(
            batch_size=max(1, (eval_batch_size or batch_size) // self.world),
            num_workers=num_workers, collate_fn=collate_fn, pin_memory=pin)
        self.val_loader = self.eval_loader(val_set) if val_set is not None else None
        self.steps_per_epoch = len(self.train_loader)
        if callable(scheduler) and not hasattr(scheduler, "step"):
            scheduler = scheduler(optimizer, self.steps_per_epoch)
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval

        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.should_stop = False

    # -------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.rank == 0:
            self._log(msg)

    def resolved_config(self) -> dict:
        cfg = dict(self.config)
        cfg.update(trainer={
            "epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed,
            "device": str(self.device), "amp_bf16": self.amp, "channels_last": self.channels_last,
            "grad_clip_norm": self.grad_clip_norm, "world_size": self.world,
            "steps_per_epoch": self.steps_per_epoch,
            "optimizer": type(self.optimizer).__name__,
            "optimizer_defaults": {k: v for k, v in self.optimizer.defaults.items()
                                   if isinstance(v, (int, float, bool, str, tuple, list))},
            "param_groups": [{"lr": g["lr"], "params": sum(p.numel() for p in g["params"])}
                             for g in self.optimizer.param_groups],
            "scheduler": type(self.scheduler).__name__ if self.scheduler else None,
            "scheduler_interval": self.scheduler_interval,
            "hooks": [type(h).__name__ for h in self.hooks],
        })
        return cfg

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "last.pt" if self.run_dir else None

    # -------------------------------------------------------------------------------------
    def run_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on one batch; returns the detached losses."""
        batch = _move(batch, self.device, self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            try:
                losses = _call(self.model, batch)
            except TypeError as exc:
                if "positional argument" not in str(exc):
                    raise
                raise TypeError(
                    f"the model is called on each batch as model(*batch) and must return a "
                    f"dict of losses ({exc}); wrap a classifier in ClassificationTask") from exc
        if not isinstance(losses, dict) or not losses:
            raise TypeError(
                f"in training mode the model must return a non-empty dict of losses, got "
                f"{type(losses).__name__}; wrap a classifier in ClassificationTask")
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"loss is {total.item()} at step {self.global_step} "
                f"({ {k: float(v) for k, v in losses.items()} }); lower the learning rate?")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        self.global_step += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["loss"] = float(total.detach())
        return out

    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        self.sampler.set_epoch(self.epoch)
        sums: dict[str, float] = {}
        seen, start = 0, time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{self.epochs}",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        for batch in bar:
            n = _batch_size(batch)
            losses = self.run_step(batch)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v * n
            seen += n
            for h in self.hooks:
                h.on_step_end(self, losses)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}",
                            img_s=f"{seen * self.world / max(elapsed, 1e-9):.0f}")
        bar.close()
        elapsed = time.perf_counter() - start
        totals = dist_utils.all_reduce_sum(
            {k: torch.tensor(v) for k, v in sums.items()} | {"_n": torch.tensor(float(seen))},
            self.device)
        n_total = float(totals.pop("_n"))
        out = {f"train_{k}" if k != "loss" else "train_loss": float(v) / max(n_total, 1)
               for k, v in totals.items()}
        out["train_time_s"] = elapsed
        out["train_img_per_s"] = n_total / max(elapsed, 1e-9)
        return out

    @torch.no_grad()
    def evaluate(self, loader: DataLoader | None = None, *, evaluator: Evaluator | None = None,
                 prefix: str = "val_") -> dict:
        """Metrics of the eval-mode model on ``loader`` (default: the validation set) scored by
        ``evaluator`` (default: the trainer's), over all ranks."""
        loader = loader if loader is not None else self.val_loader
        evaluator = evaluator if evaluator is not None else self.evaluator
        if loader is None or evaluator is None:
            return {}
        model = self.unwrapped
        was_training = model.training
        model.eval()
        evaluator.reset()
        try:
            for batch in loader:
                inputs, targets = _move(batch, self.device, self.channels_last)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    predictions = model(inputs)
                evaluator.update(predictions, targets)
        finally:
            model.train(was_training)
        return {f"{prefix}{k}": v for k, v in evaluator.compute().items()}

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        """This rank's shard of ``dataset`` (every ``world``-th item, no padding), batched as
        the validation set: the evaluators gather or reduce the shards, so every item counts
        once."""
        return DataLoader(dataset, sampler=_ShardSampler(len(dataset), self.rank, self.world),
                          **self._eval_loader_args)

    # -------------------------------------------------------------------------------------
    def fit(self, resume: str | Path | bool | None = None) -> list[dict[str, float]]:
        """Train to ``epochs`` (or until a hook stops it). ``resume``: a checkpoint path, a run
        folder, or True for this trainer's own run folder."""
        if resume:
            self._resume(resume)
        if self.run_dir is not None and self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json",
                              json.dumps(self.resolved_config(), indent=2, default=str))
        for h in self.hooks:
            h.on_fit_start(self)
        while self.epoch < self.epochs and not self.should_stop:
            for h in self.hooks:
                h.on_epoch_start(self)
            metrics: dict[str, float] = {"epoch": self.epoch + 1,
                                         "lr": self.optimizer.param_groups[0]["lr"]}
            metrics |= self.train_epoch()
            for h in self.hooks:
                h.on_train_epoch_end(self)
            metrics |= self.evaluate()
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            for h in self.hooks:
                h.on_epoch_end(self, metrics)
            self.epoch += 1
            self.history.append(metrics)
            self._write_epoch()  # saved before it is reported: a printed epoch is never lost
            self.log(_format_metrics(metrics))
        for h in self.hooks:
            h.on_fit_end(self)
        if self.run_dir is not None and self.rank == 0:
            atomic_save({"model": self.unwrapped.state_dict()}, self.run_dir / "model_final.pt")
        dist_utils.barrier()
        return self.history

    def state_dict(self) -> dict:
        return {
            "model": self.unwrapped.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "hooks": [h.state_dict() for h in self.hooks],
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history,
            "should_stop": self.should_stop,
            "schedule_segment": self.schedule_segment,
            "rng": rng_state(),
        }

    def _write_epoch(self) -> None:
        if self.run_dir is None or self.rank != 0:
            dist_utils.barrier()
            return
        atomic_save(self.state_dict(), self.checkpoint_path)
        atomic_write_text(self.run_dir / "metrics.jsonl",
                          "".join(json.dumps(m) + "\n" for m in self.history))
        from modernvision.viz.plots import plot_history

        plot_history(self.history, self.run_dir)
        dist_utils.barrier()

    def _resume(self, resume: str | Path | bool) -> None:
        if resume is True:
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs a run_dir")
            path = self.checkpoint_path
        else:
            path = Path(resume)
            if path.is_dir():
                path = path / "checkpoints" / "last.pt"
        ckpt = load_checkpoint(path, map_location=self.device)
        try:
            self.unwrapped.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this model/optimizer: "
                                  f"{exc}") from exc
        for h, state in zip(self.hooks, ckpt.get("hooks", [])):
            h.load_state_dict(state)
        self.epoch, self.global_step = ckpt["epoch"], ckpt.get("global_step", 0)
        self.history = list(ckpt.get("history", []))
        set_rng_state(ckpt["rng"])
        if ckpt.get("schedule_segment", 0) == self.schedule_segment:
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            self.should_stop = bool(ckpt.get("should_stop", False))
            self.log(f"resumed from {path} after epoch {self.epoch}")
        else:  # the first epoch of an extension: a fresh schedule from the base lr
            if self.scheduler is not None:
                for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_lr()):
                    group["lr"] = lr
            self.should_stop = False
            for h in self.hooks:
                h.on_extend(self)
            self.log(f"extending {path} after epoch {self.epoch} with a new schedule to epoch "
                     f"{self.epochs}")


def _forward_only(trainer: Trainer, batch: Any) -> Any:
    """One forward pass of the unwrapped model on a training batch (no step, no sync)."""
    batch = _move(batch, trainer.device, trainer.channels_last)
    with torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.amp):
        return _call(trainer.unwrapped, batch)


def _format_metrics(m: dict[str, float]) -> str:
    parts = [f"epoch {int(m['epoch'])}"]
    for k, v in m.items():
        if k == "epoch" or not isinstance(v, (int, float)) or (isinstance(v, float)
                                                                and math.isnan(v)):
            continue
        parts.append(f"{k} {v:.4g}" if "time" not in k else f"{k} {v:.1f}")
    return " | ".join(parts)

