"""The task-neutral run: ``train`` / ``resume`` / ``load_run`` / ``evaluate_run`` / ``predict_run``.

A :class:`Job` knows one task family: how to read its data, build its trainable model and its
evaluator, and how to predict on files. Everything else — the run folder, the optimizer and
schedule, hooks, the Trainer, resuming and extending, the test evaluation — is here, the same for
every task. ``modernvision train`` picks the job from the model's registry task.

A run folder holds ``config.json`` (the resolved config, the task, the job's ``meta`` such as
the class names, the trainer's settings and any extensions), ``metrics.jsonl``, the plots,
``checkpoints/last.pt`` (after every epoch, atomically), ``model_final.pt`` and, last,
``test_metrics.json``: a run with that file is finished.

Resume semantics:

* ``resume(RUN)`` continues an interrupted run to its configured end; the result is bit-exact
  with a run that was never interrupted. A run killed before its first checkpoint starts over.
  Only where it runs (``device``, ``num_workers``) may change.
* ``resume(RUN, extend_epochs=K)`` trains a *finished* run for ``K`` more epochs with a new
  schedule segment over those epochs (same schedule kind, from the base lr, no warm-up); the
  extension is recorded in ``config.json`` and can itself be interrupted and resumed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from modernvision._errors import InvalidArgumentError, MissingFileError
from modernvision.engine import distributed as dist_utils
from modernvision.engine.checkpoint import CheckpointError, atomic_write_text, load_checkpoint
from modernvision.engine.evaluation import Evaluator
from modernvision.engine.jobs.configs import (
    CONFIGS,
    RunConfig,
    flag,
    job_for_task,
    read_config_json,
)

#: Image files ``predict`` picks up from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


@dataclass
class DataParts:
    """What a job's data gives a run: datasets of ``(inputs, targets)`` items."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    meta: dict = field(default_factory=dict)  # saved in config.json, e.g. {"classes": [...]}


@dataclass
class LoadedRun:
    """A run's job, config, meta and trained model (in eval mode)."""

    run_dir: Path
    job: Job
    cfg: RunConfig
    meta: dict
    model: nn.Module


class Job:
    """One task family's part of a run. Subclasses set the class attributes and implement
    :meth:`build_data`, :meth:`build_model`, :meth:`build_evaluator`, :meth:`split_dataset`
    and :meth:`predict`."""

    name: ClassVar[str]
    #: Early stopping's metric and mode (a key of the epoch metrics).
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    #: ``predict`` options (CLI flag names without dashes) this job reads.
    predict_options: ClassVar[frozenset[str]] = frozenset({"out"})
    #: Batch size for validation and ``eval`` (None: the training batch size).
    eval_batch_size: ClassVar[int | None] = None

    @property
    def config_cls(self) -> type[RunConfig]:
        return CONFIGS[self.name]

    def build_data(self, cfg: RunConfig) -> DataParts:
        raise NotImplementedError  # pragma: no cover - every job implements it

    def build_model(self, cfg: RunConfig, meta: dict, *, pretrained: bool = True) -> nn.Module:
        """The trainable model: a loss dict from ``model(inputs, targets)`` in training mode,
        predictions from ``model(inputs)`` in eval mode."""
        raise NotImplementedError  # pragma: no cover

    def build_evaluator(self, cfg: RunConfig, meta: dict, dataset: Dataset) -> Evaluator:
        """The evaluator for ``dataset`` (which may be a ``torch.utils.data.Subset``; an
        evaluator that needs data-set-level ground truth, such as COCO's, reads it from the
        underlying data set and keeps only the images it was updated with)."""
        raise NotImplementedError  # pragma: no cover

    def split_dataset(self, cfg: RunConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        """One split (``train`` / ``val`` / ``test``) of the run's data, or of ``data`` (a
        ``--data`` spec of the same kind), with the eval-time transforms."""
        raise NotImplementedError  # pragma: no cover

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        """Predictions for image files: one dict per image with at least ``image`` and
        ``text`` (the line ``modernvision predict`` prints)."""
        raise NotImplementedError  # pragma: no cover

    # Optional ---------------------------------------------------------------------------
    def collate_fn(self) -> Callable | None:
        """How items become a batch (None: torch's default stacking; detection batches are
        lists)."""
        return None

    def param_groups(self, model: nn.Module, cfg: RunConfig) -> list:
        return [p for p in model.parameters() if p.requires_grad]

    def write_test_artefacts(self, run_dir: Path, evaluator: Evaluator, cfg: RunConfig,
                             meta: dict, metrics: dict) -> None:
        """Files beside ``test_metrics.json`` (e.g. a confusion matrix)."""

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        """The one line ``modernvision train`` ends with."""
        return ", ".join(f"{k.removeprefix(prefix)} {v:.4f}" for k, v in metrics.items()
                         if k.startswith(prefix) and isinstance(v, float))


_JOBS: dict[str, Job] = {}


def register_job(job_cls: type[Job]) -> type[Job]:
    """Class decorator: make a job available under its ``name``."""
    if job_cls.name in _JOBS:
        raise ValueError(f"job {job_cls.name!r} is already registered")
    if job_cls.name not in CONFIGS:
        raise ValueError(f"job {job_cls.name!r} has no config in engine/jobs/configs.py")
    _JOBS[job_cls.name] = job_cls()
    return job_cls


def get_job(name: str) -> Job:
    import modernvision.engine.jobs as pkg

    pkg.load_jobs()
    return _JOBS[name]


def job_for_model(model: str) -> Job:
    from modernvision.models.registry import get_entry

    return get_job(job_for_task(get_entry(model).task))


# ---------------------------------------------------------------------------------------------
# Run folders


def default_run_dir(cfg: RunConfig, *, root: str | Path = "runs") -> Path:
    """``runs/<model>-<data>``, or the first free ``...-2``, ``...-3``."""
    base = Path(root) / f"{cfg.model}-{cfg.data_spec.label}"
    path, k = base, 1
    while path.exists() and any(path.iterdir()):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def prepare_new_run_dir(run_dir: Path, *, overwrite: bool) -> None:
    """Refuse to train into a folder that holds anything, unless it is a run and
    ``overwrite`` is set (then the old run is deleted)."""
    try:
        _check_new_run_dir(run_dir, overwrite=overwrite)
    finally:
        dist_utils.barrier()  # no rank creates the folder before every rank has checked it


def _check_new_run_dir(run_dir: Path, *, overwrite: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise InvalidArgumentError(f"--run-dir {run_dir} is a file, not a folder")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return
    if not (run_dir / "config.json").is_file():
        raise InvalidArgumentError(
            f"--run-dir {run_dir} is not empty and not a run folder; choose another --run-dir")
    if not overwrite:
        raise InvalidArgumentError(
            f"--run-dir {run_dir} already holds a run; continue it with --resume {run_dir}, "
            "replace it with --overwrite, or choose another --run-dir")
    if dist_utils.is_main_process():
        shutil.rmtree(run_dir)


# ---------------------------------------------------------------------------------------------
# Training


def _segments(raw_cfg: dict, cfg: RunConfig) -> list[tuple[int, int]]:
    """``[(first_epoch, epochs), ...]``: the run's own schedule, then each extension."""
    segs = [(0, cfg.epochs)]
    for ext in raw_cfg.get("extensions", []):
        segs.append((int(ext["from_epoch"]), int(ext["epochs"])))
    return segs


def _build_trainer(job: Job, cfg: RunConfig, run_dir: Path, *, segments: list[tuple[int, int]],
                   extensions: list[dict], progress: bool | None, log: Callable[[str], None]):
    from modernvision.engine.hooks import EarlyStopping, PreciseBN
    from modernvision.engine.trainer import Trainer
    from modernvision.optim import build_optimizer, build_scheduler

    torch.manual_seed(cfg.seed)
    data = job.build_data(cfg)
    model = job.build_model(cfg, data.meta, pretrained=True)
    if cfg.init is not None and not (run_dir / "checkpoints" / "last.pt").is_file():
        from modernvision.models.pretrained import load_own_weights

        report = load_own_weights(model, cfg.init)  # a resumed run has its own checkpoint
        log(f"--init {cfg.init}: {len(report['loaded'])} tensors loaded, "
            f"{len(report['not_in_source'])} of the model's newly initialised, "
            f"{len(report['shape_mismatch'])} skipped for their shapes")
    momentum = {} if cfg.momentum is None else {"momentum": cfg.momentum}
    optimizer = build_optimizer(cfg.optimizer, job.param_groups(model, cfg), lr=cfg.lr,
                                weight_decay=cfg.weight_decay, **momentum)
    seg_index = len(segments) - 1
    seg_epochs = segments[-1][1]
    warmup = cfg.warmup_epochs if seg_index == 0 else 0

    def scheduler(opt, steps_per_epoch):
        return build_scheduler(cfg.scheduler, opt, epochs=seg_epochs,
                               steps_per_epoch=steps_per_epoch, warmup_epochs=warmup)

    hooks = []
    if cfg.precise_bn:
        hooks.append(PreciseBN(cfg.precise_bn))
    if cfg.patience is not None:
        metric, mode = job.monitor
        hooks.append(EarlyStopping(metric, mode=mode, patience=cfg.patience,
                                   min_delta=cfg.min_delta))
    config = cfg.to_dict() | {"task": _task_of(cfg), "job": job.name, "meta": data.meta}
    if extensions:
        config["extensions"] = extensions
    total_epochs = segments[-1][0] + seg_epochs
    trainer = Trainer(model, optimizer, data.train, val_set=data.val,
                      evaluator=(job.build_evaluator(cfg, data.meta, data.val)
                                 if data.val is not None else None),
                      epochs=total_epochs, batch_size=cfg.batch_size, scheduler=scheduler,
                      scheduler_interval="step", hooks=hooks, run_dir=run_dir, device=cfg.device,
                      grad_clip_norm=cfg.grad_clip, num_workers=cfg.num_workers, seed=cfg.seed,
                      config=config, collate_fn=job.collate_fn(),
                      eval_batch_size=job.eval_batch_size, progress=progress, log=log,
                      schedule_segment=seg_index)
    return trainer, data


def _task_of(cfg: RunConfig) -> str:
    from modernvision.models.registry import get_entry

    return get_entry(cfg.model).task


def _fit_and_test(job: Job, trainer, data: DataParts, cfg: RunConfig, run_dir: Path, *,
                  resume: bool) -> dict:
    start = time.perf_counter()
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if resume and not checkpoint.is_file():
        trainer.log(f"{run_dir} has no finished epoch yet; starting it from the beginning")
        resume = False
    trainer.fit(resume=checkpoint if resume else None)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"epochs_run": trainer.epoch, "train_seconds": seconds}
    if data.test is not None:
        evaluator = job.build_evaluator(cfg, data.meta, data.test)
        # Each rank scores its shard; the evaluator gathers them (every image counted once).
        result |= trainer.evaluate(trainer.eval_loader(data.test), evaluator=evaluator,
                                   prefix="test_")
        result["test_images"] = len(data.test)
        if trainer.rank == 0:
            job.write_test_artefacts(run_dir, evaluator, cfg, data.meta, result)
    if trainer.rank == 0:
        atomic_write_text(run_dir / "test_metrics.json", json.dumps(result, indent=2))
    dist_utils.barrier()
    return result


def train(cfg: RunConfig, *, overwrite: bool = False, progress: bool | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train a new run; returns its test metrics (``test_*``), ``epochs_run``,
    ``train_seconds`` and ``run_dir``.

    Args:
        cfg: the run's config (validated here). ``cfg.run_dir`` None picks a fresh
            ``runs/<model>-<data>[-k]`` folder; a given folder must be empty, or hold a run
            and ``overwrite`` be set.
        overwrite: replace an existing run in ``cfg.run_dir``.
        progress: tqdm bars (default: only on a terminal).
        log: where the per-epoch lines go (rank 0 only).
    """
    cfg.validate()
    job = job_for_model(cfg.model)
    if not isinstance(cfg, job.config_cls):
        raise InvalidArgumentError(
            f"{cfg.model} is a {job.name} model; it needs a {job.config_cls.__name__}, got a "
            f"{type(cfg).__name__}")
    # Join torchrun's process group first, so that every rank agrees on the run folder.
    dist_utils.init_distributed(torch.device(cfg.device) if cfg.device else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.run_dir is None:
        chosen = str(default_run_dir(cfg)) if dist_utils.is_main_process() else None
        cfg.run_dir = str(dist_utils.all_gather_object(chosen)[0])
        if dist_utils.is_main_process():
            log(f"run folder {cfg.run_dir}")
    run_dir = Path(cfg.run_dir)
    prepare_new_run_dir(run_dir, overwrite=overwrite)
    trainer, data = _build_trainer(job, cfg, run_dir, segments=_segments({}, cfg),
                                   extensions=[], progress=progress, log=log)
    return _fit_and_test(job, trainer, data, cfg, run_dir, resume=False) | {
        "run_dir": str(run_dir)}


#: What ``resume`` may change: where the run executes, not what it computes.
RESUME_OVERRIDES = ("device", "num_workers")


def read_run_config(run_dir: str | Path) -> tuple[dict, RunConfig, Job]:
    """The raw ``config.json``, the typed config and the job of a run folder."""
    run = Path(run_dir)
    cfg_path = run / "config.json"
    if not run.is_dir():
        raise MissingFileError(f"{run} is not a run folder (no such folder)")
    if not cfg_path.is_file():
        raise MissingFileError(f"{run} is not a run folder (no config.json)")
    raw = read_config_json(cfg_path)
    task = raw.get("task", "classification")  # runs written before tasks were recorded
    job = get_job(job_for_task(task))
    if "classes" in raw and "meta" not in raw:
        raw["meta"] = {"classes": raw["classes"]}
    cfg = job.config_cls.from_dict(raw, source=str(cfg_path))
    return raw, cfg, job


def resume(run_dir: str | Path, *, extend_epochs: int | None = None,
           overrides: dict[str, Any] | None = None, progress: bool | None = None,
           log: Callable[[str], None] = print) -> dict:
    """Continue an interrupted run to its end, or extend a finished one (see the module
    docstring). ``overrides`` may set only :data:`RESUME_OVERRIDES`."""
    raw, cfg, job = read_run_config(run_dir)
    run = Path(run_dir)
    overrides = dict(overrides or {})
    bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if bad:
        given = ", ".join(f"{flag(b)} {overrides[b]}" + (
            f" (the run's is {getattr(cfg, b)})" if hasattr(cfg, b) else "") for b in bad)
        raise InvalidArgumentError(
            f"--resume continues {run} as it was configured, so {given} cannot be given; only "
            f"{', '.join(flag(o) for o in RESUME_OVERRIDES)} can change. Train a new run for "
            "other settings")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.run_dir = str(run)
    cfg.validate()
    extensions = list(raw.get("extensions", []))
    finished = (run / "test_metrics.json").is_file()
    if extend_epochs is not None:
        if not isinstance(extend_epochs, int) or extend_epochs < 1:
            raise InvalidArgumentError(f"--extend-epochs must be a positive integer, got "
                                       f"{extend_epochs!r}")
        if not finished:
            raise InvalidArgumentError(
                f"{run} has not finished; resume it first (--resume {run} without "
                "--extend-epochs), then extend it")
        done = int(load_checkpoint(run / "checkpoints" / "last.pt")["epoch"])
        extensions.append({"from_epoch": done, "epochs": extend_epochs})
    elif finished:
        result = json.loads((run / "test_metrics.json").read_text())
        log(f"{run} already finished its {result.get('epochs_run', '?')} epochs; nothing to "
            f"resume (train it further with --resume {run} --extend-epochs N)")
        return result | {"run_dir": str(run), "already_finished": True}
    segments = _segments({"extensions": extensions}, cfg)
    trainer, data = _build_trainer(job, cfg, run, segments=segments, extensions=extensions,
                                   progress=progress, log=log)
    if extend_epochs is not None and trainer.rank == 0:
        (run / "test_metrics.json").unlink()  # the run is unfinished again until it ends
    dist_utils.barrier()
    return _fit_and_test(job, trainer, data, cfg, run, resume=True) | {"run_dir": str(run)}


# ---------------------------------------------------------------------------------------------
# Using a trained run


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> LoadedRun:
    """A run's trained model (eval mode) with its job, config and meta."""
    raw, cfg, job = read_run_config(run_dir)
    run = Path(run_dir)
    meta = raw.get("meta", {})
    model = job.build_model(cfg, meta, pretrained=False)
    final, last = run / "model_final.pt", run / "checkpoints" / "last.pt"
    path = final if final.is_file() else last
    if not path.is_file():
        raise MissingFileError(f"{run} holds no weights (model_final.pt or checkpoints/last.pt)")
    if path == last:
        state = load_checkpoint(path, map_location=device)
    else:
        try:
            state = torch.load(path, map_location=device, weights_only=False)
        except Exception as exc:  # torch raises several types for truncated/corrupt files
            raise CheckpointError(f"cannot read weights {path} ({type(exc).__name__}: {exc})"
                                  ) from exc
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"weights {path} do not fit the run's model {cfg.model}: "
                              f"{exc}") from exc
    return LoadedRun(run, job, cfg, meta, model.to(device).eval())


def evaluate_run(run_dir: str | Path, *, split: str = "test", data: str | None = None,
                 full: bool = False, device: str = "cpu") -> dict:
    """Score a run's model on one split; by default on the run's own ``--eval-subset``.

    Returns the job's metrics prefixed with the split, plus ``images`` (how many were scored)
    and ``subset`` (the subset used, or None for all).
    """
    if split not in ("train", "val", "test"):
        raise InvalidArgumentError(f"--split must be train, val or test, got {split!r}")
    run = load_run(run_dir, device=device)
    dataset = run.job.split_dataset(run.cfg, run.meta, split, data)
    subset = None if full else run.cfg.eval_subset
    if subset is not None and subset < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(subset))
    evaluator = run.job.build_evaluator(run.cfg, run.meta, dataset)
    loader = DataLoader(dataset, batch_size=run.job.eval_batch_size or run.cfg.batch_size,
                        collate_fn=run.job.collate_fn())
    evaluator.reset()
    with torch.no_grad():
        for inputs, targets in loader:
            from modernvision.engine.trainer import _move

            inputs, targets = _move((inputs, targets), torch.device(device), False)
            evaluator.update(run.model(inputs), targets)
    metrics = {f"{split}_{k}": v for k, v in evaluator.compute().items()}
    return metrics | {"images": len(dataset), "subset": subset, "split": split,
                      "data": data or run.cfg.data, "evaluator": evaluator}


def expand_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders replaced by their image files (sorted)."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise MissingFileError(f"{path} is a folder with no image files "
                                       f"({', '.join(IMAGE_SUFFIXES)})")
            out.extend(files)
        elif path.is_file():
            out.append(path)
        else:
            raise MissingFileError(f"image {path} does not exist")
    return out


def predict_run(run_dir: str | Path, inputs: Sequence[str | Path], *,
                options: dict[str, Any] | None = None, device: str = "cpu") -> list[dict]:
    """A run's predictions for image files and folders of images.

    ``options`` are the job's ``predict`` options (e.g. ``topk`` for classification, ``out``
    for a folder of drawn results); one that the job does not read is an error.
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    paths = expand_images(inputs)
    run = load_run(run_dir, device=device)
    bad = sorted(set(options) - set(run.job.predict_options))
    if bad:
        takes = ", ".join(flag(o) for o in sorted(run.job.predict_options))
        raise InvalidArgumentError(
            f"{', '.join(flag(b) for b in bad)} does not apply to {run.job.name} runs "
            f"({run.run_dir} is one); they take {takes}")
    return run.job.predict(run, paths, options)


def config_fields_by_job() -> dict[str, list[dataclasses.Field]]:
    return {name: cls.cli_fields() for name, cls in CONFIGS.items()}
