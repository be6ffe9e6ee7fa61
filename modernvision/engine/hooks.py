"""Trainer hooks: small objects called at fixed points of the loop."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from modernvision.engine.trainer import Trainer


class Hook:
    """Base hook; override what you need. State saved in checkpoints via ``state_dict``."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None: ...

    def on_train_epoch_end(self, trainer: Trainer) -> None:
        """After the epoch's training steps, before validation."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...

    def on_extend(self, trainer: Trainer) -> None:
        """A finished run continues with a new schedule segment (after its state was loaded)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class EarlyStopping(Hook):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    At the end of training the best weights seen are restored (``restore_best=True``).

    Args:
        monitor: a key of the epoch metrics, e.g. ``"val_loss"`` or ``"val_acc"``.
        mode: ``"min"`` or ``"max"``.
        patience: epochs without improvement before stopping.
        min_delta: the least change that counts as an improvement.
        restore_best: load the best weights back at the end.
    """

    def __init__(self, monitor: str = "val_loss", *, mode: str = "min", patience: int = 3,
                 min_delta: float = 0.0, restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self.monitor not in metrics:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, but the epoch metrics are "
                           f"{sorted(metrics)}")
        value = metrics[self.monitor]
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, trainer.epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in trainer.unwrapped.state_dict().items()})
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                trainer.log(f"early stopping: {self.monitor} has not improved for "
                            f"{self.bad_epochs} epochs (best {self.best:.4f} at epoch "
                            f"{self.best_epoch + 1})")
                trainer.should_stop = True

    def on_extend(self, trainer: Trainer) -> None:
        self.bad_epochs = 0  # the new schedule gets its own patience

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.unwrapped.load_state_dict(self.best_state)
            trainer.log(f"restored the best weights (epoch {self.best_epoch + 1}, "
                        f"{self.monitor} {self.best:.4f})")

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


class PreciseBN(Hook):
    """Recompute batch-norm running statistics at the end of each epoch (detectron2's
    "precise BN"; Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021, arXiv:2105.07576).

    The exponential moving average lags behind weights that change quickly, which makes
    eval-mode accuracy of deep BN nets meaningless early in training or after short schedules.
    This hook resets the statistics and re-estimates them as a plain average over
    ``num_batches`` training batches, with the weights frozen, before validation.
    """

    def __init__(self, num_batches: int = 20) -> None:
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        self.num_batches = num_batches

    @torch.no_grad()
    def recompute(self, trainer: Trainer) -> None:
        from modernvision.engine import distributed as dist_utils
        from modernvision.engine.trainer import _forward_only
        from modernvision.layers.norms import _BatchNorm as OurBatchNorm

        kinds = (torch.nn.modules.batchnorm._BatchNorm, OurBatchNorm)  # torch's and ours
        bns = [m for m in trainer.unwrapped.modules()
               if isinstance(m, kinds) and m.track_running_stats]
        if not bns:
            return
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        was_training = trainer.unwrapped.training
        trainer.unwrapped.train()
        try:
            for i, batch in enumerate(trainer.train_loader):
                if i == self.num_batches:
                    break
                _forward_only(trainer, batch)
            for m in bns:  # every rank ends with the same statistics
                stats = {"mean": m.running_mean, "var": m.running_var}
                summed = dist_utils.all_reduce_sum(stats, trainer.device)
                for k, buf in stats.items():
                    buf.copy_(summed[k] / dist_utils.world_size())
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
            trainer.unwrapped.train(was_training)

    def on_train_epoch_end(self, trainer: Trainer) -> None:
        self.recompute(trainer)
