"""Run configurations: everything a ``modernvision train`` run depends on, resolved and saved.

This module imports nothing heavy (no torch), so the command line can build ``train --help``
from these dataclasses in milliseconds. :class:`RunConfig` holds what every task shares; each
job has a subclass with its own fields (``ClassificationConfig``, ...). Each field's metadata
carries its help text; the flag is the field name with dashes (``batch_size`` ->
``--batch-size``), and errors name the flag, since that is what a person typed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from modernvision._errors import BadFileError, InvalidArgumentError

#: Data specs that name a folder or files instead of a built-in data set.
DATA_KINDS = ("scenes", "coco", "voc", "yolo", "strings", "folder")


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def opt(default: Any = None, help: str = "", *, factory: Any = None, cli: bool = True) -> Any:
    """A config field with its help text (``cli=False`` keeps it off the command line)."""
    meta = {"help": help, "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: a built-in data set name, or ``KIND:PATH[,PATH]``."""

    kind: str  # "builtin" or one of DATA_KINDS
    name: str  # the data set name (builtin) or the first path
    extra: tuple[str, ...] = ()  # further comma-separated paths (coco: the annotation file)

    @property
    def label(self) -> str:
        """A short name for run folders: ``fashion-mnist``, ``scenes-mydir``."""
        if self.kind == "builtin":
            return self.name
        return f"{self.kind}-{Path(self.name).name or 'data'}"


def parse_data_spec(spec: str) -> DataSpec:
    """Parse ``--data``: ``fashion-mnist``, ``scenes:DIR``, ``coco:IMAGES,ANNOTATIONS.json``,
    ``voc:DIR``, ``yolo:DIR``, ``strings:DIR``, ``folder:DIR``."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgumentError(f"--data must be a data set name or KIND:PATH, got {spec!r}")
    kind, sep, rest = spec.partition(":")
    if not sep:
        return DataSpec("builtin", spec)
    if kind not in DATA_KINDS:
        raise InvalidArgumentError(
            f"--data {spec!r}: unknown kind {kind!r}; expected a data set name or one of "
            f"{', '.join(k + ':PATH' for k in DATA_KINDS)}")
    parts = [p for p in rest.split(",") if p]
    if not parts:
        raise InvalidArgumentError(f"--data {spec!r}: {kind}: needs a path")
    return DataSpec(kind, parts[0], tuple(parts[1:]))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass
class RunConfig:
    """What every run shares, whatever its task."""

    #: The job that reads this config (set by each subclass).
    job: ClassVar[str] = ""

    model: str = opt("compact_cnn", "registered model name (`modernvision models` lists them)")
    data: str = opt("fashion-mnist", "a data set name (`modernvision data list`) or KIND:PATH "
                    "(scenes:DIR, coco:IMAGES,ANN.json, voc:DIR, yolo:DIR, strings:DIR)")
    epochs: int = opt(10, "epochs to train")
    batch_size: int = opt(128, "global batch size (split across processes under torchrun)")
    lr: float = opt(1e-3, "base learning rate")
    optimizer: str = opt("adam", "sgd | momentum | nesterov | rmsprop | adam | adamw")
    weight_decay: float = opt(0.0, "weight decay (decoupled for adamw)")
    momentum: float | None = opt(None, "momentum of momentum / nesterov / rmsprop "
                                 "(default 0.9); refused for optimizers without one")
    scheduler: str = opt("cosine", "lr schedule: none | step | cosine, stepped every iteration")
    warmup_epochs: float = opt(0.0, "linear lr warm-up over this many epochs")
    grad_clip: float | None = opt(None, "clip the global gradient norm to this value "
                                 "(default: no clipping)")
    patience: int | None = opt(None, "early stopping after N epochs without improvement of the "
                               "job's validation metric (default: off)")
    min_delta: float = opt(0.0, "the least improvement early stopping counts")
    precise_bn: int = opt(0, "re-estimate batch-norm statistics on N batches before each "
                          "validation (default 0: off)")
    seed: int = opt(0, "seed of the initialisation and the data order")
    num_workers: int = opt(0, "data-loader worker processes")
    train_subset: int | None = opt(None, "train on the first N training items only "
                                     "(default: all)")
    eval_subset: int | None = opt(None, "validate and test on the first N items only "
                                    "(default: all)")
    weights: str | None = opt(None, "'torchvision' or a path to a torchvision state dict "
                              "(pretrained initialisation; default: random)")
    init: str | None = opt(None, "a run folder or weights file of our own `train`: its "
                           "tensors whose names and shapes match initialise the model (e.g. a "
                           "Faster R-CNN run for a Mask R-CNN on the same backbone); not "
                           "applied when a run resumes")
    device: str | None = opt(None, "cpu | cuda | cuda:N (default: cuda when available)")
    run_dir: str | None = opt(None, "the run folder (default runs/<model>-<data>, or "
                              "runs/<model>-<data>-2, ... when that exists)")
    model_kwargs: dict = opt(factory=dict, help="extra builder keywords (--model-arg KEY=VALUE)",
                             cli=False)

    @property
    def data_spec(self) -> DataSpec:
        return parse_data_spec(self.data)

    def validate(self) -> None:
        """Check every field; raise :class:`InvalidArgumentError` naming the flag."""
        from modernvision.models.registry import get_entry

        get_entry(self.model)  # unknown model: close matches
        self.data_spec  # noqa: B018  (parses, raising on a malformed spec)
        for name in ("epochs", "batch_size"):
            if not _positive_int(getattr(self, name)):
                raise InvalidArgumentError(
                    f"{flag(name)} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("train_subset", "eval_subset"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise InvalidArgumentError(
                    f"{flag(name)} must be a positive integer (or left out for all), got "
                    f"{value!r}")
        if self.patience is not None and (not isinstance(self.patience, int)
                                          or self.patience < 0):
            raise InvalidArgumentError(f"--patience must be an integer >= 0, got "
                                       f"{self.patience!r}")
        if not self.lr > 0:
            raise InvalidArgumentError(f"--lr must be > 0, got {self.lr}")
        for name in ("weight_decay", "min_delta", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                raise InvalidArgumentError(f"{flag(name)} must be >= 0, got "
                                           f"{getattr(self, name)}")
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise InvalidArgumentError(f"--warmup-epochs ({self.warmup_epochs}) must be shorter "
                                       f"than --epochs ({self.epochs})")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InvalidArgumentError(f"--grad-clip must be > 0, got {self.grad_clip}")
        if not isinstance(self.precise_bn, int) or self.precise_bn < 0:
            raise InvalidArgumentError(f"--precise-bn must be an integer >= 0, got "
                                       f"{self.precise_bn!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise InvalidArgumentError(f"--num-workers must be an integer >= 0, got "
                                       f"{self.num_workers!r}")
        from modernvision.optim.factory import OPTIMIZERS, SCHEDULES

        if self.optimizer not in OPTIMIZERS:
            from modernvision._errors import unknown_name

            raise unknown_name("optimizer", self.optimizer, OPTIMIZERS)
        if self.scheduler not in SCHEDULES:
            from modernvision._errors import unknown_name

            raise unknown_name("lr schedule", self.scheduler, SCHEDULES)
        if self.momentum is not None:
            if self.optimizer not in ("momentum", "nesterov", "rmsprop"):
                raise InvalidArgumentError(
                    f"--momentum {self.momentum} has no effect with --optimizer "
                    f"{self.optimizer}; use --optimizer momentum (heavy ball), nesterov or "
                    "rmsprop, or leave --momentum out")
            if not 0 <= self.momentum < 1:
                raise InvalidArgumentError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.init is not None and self.weights is not None:
            raise InvalidArgumentError(
                f"--init {self.init} and --weights {self.weights} both initialise the model; "
                "give one of them")
        validate_device(self.device)

    # ---------------------------------------------------------------------------------------
    @classmethod
    def cli_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> RunConfig:
        """Rebuild from a saved ``config.json`` (extra bookkeeping keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        known_extra = {"trainer", "meta", "task", "job", "extensions", "classes", "seconds"}
        unknown = sorted(set(d) - names - known_extra)
        if unknown:
            raise BadFileError(f"{source}: unknown config keys {unknown} for a {cls.job} run")
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate_device(device: str | None) -> None:
    """``None``, ``cpu``, ``cuda`` or ``cuda:N``; CUDA only where it is available."""
    if device is None or device == "cpu":
        return
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        raise InvalidArgumentError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(f"--device {device}: CUDA is not available on this "
                                       "machine; use --device cpu (or leave it out)")
        if index and int(index) >= torch.cuda.device_count():
            raise InvalidArgumentError(f"--device {device}: this machine has "
                                       f"{torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError(f"--device {device}: MPS is not available on this machine")


@dataclass
class ClassificationConfig(RunConfig):
    """A classifier trained with cross entropy on an image classification data set."""

    job: ClassVar[str] = "classification"

    label_smoothing: float = opt(0.0, "label smoothing of the cross entropy, in [0, 1)")
    augment: bool = opt(True, "label-preserving augmentation (no flips for digits)")
    image_size: int | None = opt(None, "resize images to this side (default: native size)")
    channels: int = opt(1, "input channels: 1 (grey) or 3 (grey repeated)")
    small_input: bool = opt(True, "the zoo's small-input stem for 28-32 px images")
    transfer: str = opt("full", "full | finetune (lower backbone lr) | freeze (head only)")
    backbone_lr_mult: float = opt(0.1, "backbone lr = lr x this, with --transfer finetune")

    def validate(self) -> None:
        super().validate()
        if self.data_spec.kind != "builtin":
            raise InvalidArgumentError(
                f"--data {self.data!r}: classification trains on a built-in data set "
                "(`modernvision data list`)")
        from modernvision.data.datasets import DATASETS

        if self.data not in DATASETS:
            from modernvision._errors import unknown_name

            raise unknown_name("dataset", self.data, DATASETS)
        if not 0 <= self.label_smoothing < 1:
            raise InvalidArgumentError(f"--label-smoothing must be in [0, 1), got "
                                       f"{self.label_smoothing}")
        if self.image_size is not None and not _positive_int(self.image_size):
            raise InvalidArgumentError(f"--image-size must be a positive integer, got "
                                       f"{self.image_size!r}")
        if self.channels not in (1, 3):
            raise InvalidArgumentError(f"--channels must be 1 or 3, got {self.channels}")
        if self.transfer not in ("full", "finetune", "freeze"):
            raise InvalidArgumentError(f"--transfer must be full, finetune or freeze, got "
                                       f"{self.transfer!r}")
        if not self.backbone_lr_mult > 0:
            raise InvalidArgumentError(f"--backbone-lr-mult must be > 0, got "
                                       f"{self.backbone_lr_mult}")


@dataclass
class DetectionConfig(RunConfig):
    """A detector (boxes; masks for instance models) trained on a detection data set."""

    job: ClassVar[str] = "detection"

    data: str = opt("scenes:scenes", "scenes:DIR (`modernvision data make-scenes`), "
                    "coco:IMAGES,TRAIN.json[,VAL.json[,TEST.json]], voc:DIR or yolo:DIR; "
                    "without a val/test split the last 10%% of the images are held out")
    epochs: int = opt(12, "epochs to train")
    batch_size: int = opt(4, "global batch size (split across processes under torchrun)")
    lr: float = opt(0.01, "base learning rate")
    optimizer: str = opt("momentum", "sgd | momentum | nesterov | rmsprop | adam | adamw")
    weight_decay: float = opt(1e-4, "weight decay (decoupled for adamw)")
    warmup_epochs: float = opt(0.25, "linear lr warm-up over this many epochs")
    min_size: int | None = opt(None, "the model's transform resizes the shorter side to this "
                               "(default: the model's own)")
    max_size: int | None = opt(None, "...and caps the longer side at this (default: the "
                               "model's own)")
    multiscale: str | None = opt(None, "multi-scale training: comma-separated shorter sides "
                                 "sampled per batch, e.g. 224,256,288 (default: off)")
    augmentation: str = opt("none", "training augmentation recipe: none | photometric | ssd "
                            "(photometric, zoom-out, IoU crop); never flips, since digits do "
                            "not survive it")
    trainable_layers: int | None = opt(None, "backbone stages that train, 0-5, as torchvision's "
                                       "trainable_backbone_layers (default: the model's own)")
    val_subset: int | None = opt(None, "validate every epoch on the first N val images only "
                                 "(default: --eval-subset)")

    def validate(self) -> None:
        super().validate()
        spec = self.data_spec
        if spec.kind not in ("scenes", "coco", "voc", "yolo"):
            raise InvalidArgumentError(
                f"--data {self.data!r}: a detector trains on scenes:DIR, "
                "coco:IMAGES,ANNOTATIONS.json, voc:DIR or yolo:DIR")
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise InvalidArgumentError(f"{flag(name)} must be a positive integer, got "
                                           f"{value!r}")
        self.multiscale_sizes()  # parses, raising on a malformed list
        if self.val_subset is not None and not _positive_int(self.val_subset):
            raise InvalidArgumentError(f"--val-subset must be a positive integer (or left out), "
                                       f"got {self.val_subset!r}")
        if self.augmentation not in ("none", "photometric", "ssd"):
            raise InvalidArgumentError(f"--augmentation must be none, photometric or ssd, got "
                                       f"{self.augmentation!r}")
        if self.trainable_layers is not None and self.trainable_layers not in range(6):
            raise InvalidArgumentError(f"--trainable-layers must be 0..5, got "
                                       f"{self.trainable_layers!r}")

    def multiscale_sizes(self) -> tuple[int, ...] | None:
        if self.multiscale is None:
            return None
        try:
            sizes = tuple(int(v) for v in str(self.multiscale).split(","))
        except ValueError:
            sizes = ()
        if not sizes or any(v < 1 for v in sizes):
            raise InvalidArgumentError(f"--multiscale must be comma-separated positive sizes "
                                       f"such as 224,256,288, got {self.multiscale!r}")
        return sizes


#: Config class of each job, by job name. A job adds its config here (this module stays
#: torch-free, so ``train --help`` can list every job's flags without importing the jobs).
CONFIGS: dict[str, type[RunConfig]] = {"classification": ClassificationConfig,
                                       "detection": DetectionConfig}

#: The job that drives each registry task.
TASK_JOBS: dict[str, str] = {"classification": "classification", "detection": "detection"}


def job_for_task(task: str) -> str:
    if task not in TASK_JOBS:
        raise InvalidArgumentError(
            f"models of task {task!r} cannot be trained with `modernvision train` yet "
            f"(trainable tasks: {', '.join(sorted(TASK_JOBS))})")
    return TASK_JOBS[task]


def config_class_for_model(model: str) -> type[RunConfig]:
    from modernvision.models.registry import get_entry

    return CONFIGS[job_for_task(get_entry(model).task)]


def read_config_json(path: str | Path) -> dict:
    """A run's ``config.json`` as a dict, or a :class:`BadFileError` naming the file."""
    from modernvision.data.io import read_json

    raw = read_json(path, what="run config")
    if not isinstance(raw, dict) or "model" not in raw:
        raise BadFileError(f"run config {path} is not a run config (expected a JSON object "
                           "with 'model')")
    return raw


@dataclass
class SemanticConfig(RunConfig):
    """A semantic segmenter (per-pixel classes) trained with cross entropy on label maps."""

    job: ClassVar[str] = "semantic"

    data: str = opt("scenes:scenes", "scenes:DIR (`modernvision data make-scenes`): trains on "
                    "its semantic label maps (train split; val and test for evaluation)")
    epochs: int = opt(20, "epochs to train")
    batch_size: int = opt(8, "global batch size (split across processes under torchrun)")
    lr: float = opt(0.01, "base learning rate")
    optimizer: str = opt("momentum", "sgd | momentum | nesterov | rmsprop | adam | adamw")
    weight_decay: float = opt(1e-4, "weight decay (decoupled for adamw)")
    image_size: int | None = opt(None, "resize images (bilinear) and label maps (nearest) to "
                                 "this side (default: native size)")
    class_weighting: str = opt("none", "none | median_frequency: weight the cross entropy by "
                               "median freq / freq(c) over the training label maps (Eigen & "
                               "Fergus 2015, SegNet)")

    def validate(self) -> None:
        super().validate()
        if self.class_weighting not in ("none", "median_frequency"):
            raise InvalidArgumentError(f"--class-weighting must be none or median_frequency, "
                                       f"got {self.class_weighting!r}")
        if self.data_spec.kind != "scenes":
            raise InvalidArgumentError(
                f"--data {self.data!r}: a semantic segmenter trains on scenes:DIR "
                "(`modernvision data make-scenes --out DIR`)")
        if self.image_size is not None and not _positive_int(self.image_size):
            raise InvalidArgumentError(f"--image-size must be a positive integer, got "
                                       f"{self.image_size!r}")


CONFIGS["semantic"] = SemanticConfig
TASK_JOBS["semantic"] = "semantic"


# -- instance and panoptic segmentation (Mask R-CNN, Panoptic FPN) ---------------------------


@dataclass
class InstanceConfig(DetectionConfig):
    """An instance segmenter (boxes and masks: Mask R-CNN) trained on a detection data set
    whose objects have masks (scenes, or COCO with segmentations)."""

    job: ClassVar[str] = "instance"

    def validate(self) -> None:
        super().validate()
        if self.data_spec.kind not in ("scenes", "coco"):
            raise InvalidArgumentError(
                f"--data {self.data!r}: an instance segmenter needs masks: scenes:DIR or "
                "coco:IMAGES,ANNOTATIONS.json with segmentations")


@dataclass
class PanopticConfig(InstanceConfig):
    """A panoptic segmenter (things and stuff: Panoptic FPN) trained on scenes, whose
    semantic maps give the stuff and whose COCO panoptic files give the ground truth."""

    job: ClassVar[str] = "panoptic"

    def validate(self) -> None:
        super().validate()
        if self.data_spec.kind != "scenes":
            raise InvalidArgumentError(
                f"--data {self.data!r}: a panoptic segmenter trains on scenes:DIR (semantic "
                "maps and COCO panoptic ground truth; `modernvision data make-scenes`)")
        if self.augmentation == "ssd":
            raise InvalidArgumentError(
                "--augmentation ssd crops and zooms the images but not their semantic maps; "
                "use none or photometric for a panoptic model")


CONFIGS["instance"] = InstanceConfig
CONFIGS["panoptic"] = PanopticConfig
TASK_JOBS["instance"] = "instance"
TASK_JOBS["panoptic"] = "panoptic"

# ---------------------------------------------------------------------------------------------
# Embedding (metric learning)


def parse_classes(spec: str) -> list[int]:
    """``--classes``: class indices such as ``0-4`` or ``0,2,4,6,8`` (ranges inclusive)."""
    out: list[int] = []
    try:
        for part in str(spec).split(","):
            lo, sep, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        out = []
    if not out or any(c < 0 for c in out) or len(set(out)) != len(out):
        raise InvalidArgumentError(f"--classes must be distinct class indices such as 0-4 or "
                                   f"0,2,4 , got {spec!r}")
    return sorted(out)


#: ``--loss`` of embedding runs and their default margins (on unit-length embeddings).
EMBEDDING_LOSSES = {"triplet": 0.2, "contrastive": 1.0, "cross_entropy": None}
#: ``--mining`` of triplet runs.
EMBEDDING_MINING = ("semihard", "hard", "all", "easy", "batch_hard", "random")


@dataclass
class EmbeddingConfig(RunConfig):
    """An embedding network (unit-length vectors whose distances mean identity) trained with a
    metric-learning loss on some classes, tested by retrieval on the classes held out (unseen
    identities)."""

    job: ClassVar[str] = "embedding"

    model: str = opt("embedding_net", "an embedding model (`modernvision models --task "
                     "embedding`)")
    batch_size: int = opt(32, "groups per batch (P); each group is --k images of one class, "
                          "so a batch holds P x K images")
    k: int = opt(4, "images of one class per group (K of P x K batches)")
    classes: str = opt("0-4", "training classes (identities), e.g. 0-4 or 0,2,4; the other "
                       "classes are held out, and the test retrieval runs on them only")
    loss: str = opt("triplet", "triplet | contrastive | cross_entropy (a softmax classifier "
                    "over the training classes; its penultimate features are the embedding)")
    mining: str = opt("semihard", "triplets mined in each batch: semihard | hard | all | easy "
                      "| batch_hard | random")
    margin: float | None = opt(None, "the loss's margin (default: 0.2 triplet, 1.0 "
                               "contrastive)")
    embedding_dim: int = opt(64, "embedding size")
    backbone: str = opt("compact_cnn", "the headless zoo backbone of embedding_net")
    augment: bool = opt(True, "label-preserving augmentation (no flips for digits)")
    image_size: int | None = opt(None, "resize images to this side (default: native size)")
    channels: int = opt(1, "input channels: 1 (grey) or 3 (grey repeated)")
    test_split: str = opt("test", "images of the held-out classes to retrieve among: test "
                          "(their test split) or all (every split: none was seen in training)")

    def validate(self) -> None:
        super().validate()
        if self.data_spec.kind != "builtin":
            raise InvalidArgumentError(
                f"--data {self.data!r}: embedding runs train on a built-in data set "
                "(`modernvision data list`); their classes stand in for identities")
        from modernvision.data.datasets import DATASETS

        if self.data not in DATASETS:
            from modernvision._errors import unknown_name

            raise unknown_name("dataset", self.data, DATASETS)
        parse_classes(self.classes)
        if self.loss not in EMBEDDING_LOSSES:
            raise InvalidArgumentError(f"--loss must be one of {', '.join(EMBEDDING_LOSSES)}, "
                                       f"got {self.loss!r}")
        if self.mining not in EMBEDDING_MINING:
            raise InvalidArgumentError(f"--mining must be one of {', '.join(EMBEDDING_MINING)}"
                                       f", got {self.mining!r}")
        if self.margin is not None and not self.margin > 0:
            raise InvalidArgumentError(f"--margin must be > 0, got {self.margin}")
        for name in ("k", "embedding_dim"):
            if not _positive_int(getattr(self, name)):
                raise InvalidArgumentError(f"{flag(name)} must be a positive integer, got "
                                           f"{getattr(self, name)!r}")
        if self.k < 2 and self.loss != "cross_entropy":
            raise InvalidArgumentError(f"--k must be >= 2 for --loss {self.loss} (a group "
                                       "needs a positive pair), got 1")
        if self.image_size is not None and not _positive_int(self.image_size):
            raise InvalidArgumentError(f"--image-size must be a positive integer, got "
                                       f"{self.image_size!r}")
        if self.channels not in (1, 3):
            raise InvalidArgumentError(f"--channels must be 1 or 3, got {self.channels}")
        if self.test_split not in ("test", "all"):
            raise InvalidArgumentError(f"--test-split must be test or all, got "
                                       f"{self.test_split!r}")

    @property
    def resolved_margin(self) -> float | None:
        return self.margin if self.margin is not None else EMBEDDING_LOSSES[self.loss]


CONFIGS["embedding"] = EmbeddingConfig
TASK_JOBS["embedding"] = "embedding"


@dataclass
class SequenceConfig(RunConfig):
    """An image-to-sequence model (a string reader) trained on ``make-strings`` data."""

    job: ClassVar[str] = "sequence"

    model: str = opt("string_reader_transformer", "registered model name "
                     "(`modernvision models --task sequence`)")
    data: str = opt("strings:strings", "strings:DIR (`modernvision data make-strings`); "
                    "without a val split the last 10%% of train is held out, without a test "
                    "split val is the test")
    epochs: int = opt(10, "epochs to train")
    batch_size: int = opt(64, "global batch size (split across processes under torchrun)")
    optimizer: str = opt("adamw", "sgd | momentum | nesterov | rmsprop | adam | adamw")
    weight_decay: float = opt(0.01, "weight decay (decoupled for adamw)")
    warmup_epochs: float = opt(0.5, "linear lr warm-up over this many epochs")
    grad_clip: float | None = opt(1.0, "clip the global gradient norm to this value "
                                  "(default 1.0)")
    label_smoothing: float = opt(0.0, "label smoothing of the cross entropy, in [0, 1)")
    augment: bool = opt(True, "label-preserving augmentation (small shifts and scaling)")
    beam_size: int = opt(1, "sequence: beam width of decoding in eval and predict "
                         "(1: greedy)")

    def validate(self) -> None:
        super().validate()
        if self.data_spec.kind != "strings":
            raise InvalidArgumentError(
                f"--data {self.data!r}: a sequence model trains on strings:DIR "
                "(`modernvision data make-strings --out DIR`)")
        if not 0 <= self.label_smoothing < 1:
            raise InvalidArgumentError(f"--label-smoothing must be in [0, 1), got "
                                       f"{self.label_smoothing}")
        if not _positive_int(self.beam_size):
            raise InvalidArgumentError(f"--beam-size must be a positive integer, got "
                                       f"{self.beam_size!r}")


CONFIGS["sequence"] = SequenceConfig
TASK_JOBS["sequence"] = "sequence"
