"""The sequence job: an image-to-sequence model (a string reader) on ``strings:DIR`` data.

``strings:DIR`` is a folder written by ``modernvision data make-strings`` (``DIR/train``,
``DIR/val``, ``DIR/test``; see :mod:`modernvision.data.strings`). Without a val split the last
10% of train is held out; without a test split, val is also the test. Targets are token ids
``[bos, chars..., eos, pad...]`` of a fixed length (the folder's longest string + 2), so the
default collation stacks them. The model returns ``{"loss_seq": ...}`` in training and decoded
tokens in eval; :class:`SequenceEvaluator` scores them: sequence accuracy (exact match) and
character error rate (edit distance over reference length).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from modernvision._errors import InvalidArgumentError
from modernvision.data.strings import StringsSplit, load_strings, strings_splits
from modernvision.engine import distributed as dist_utils
from modernvision.engine.jobs.base import DataParts, Job, LoadedRun, register_job
from modernvision.engine.jobs.configs import SequenceConfig, parse_data_spec
from modernvision.metrics.sequence import edit_distance
from modernvision.models import create
from modernvision.models.sequence.image_to_sequence import Vocabulary

HOLDOUT_FRACTION = 0.1


class StringsDataset(Dataset):
    """``(image: float [1, H, W] in [0, 1], tokens: long [max_length + 2])`` items."""

    def __init__(self, split: StringsSplit, indices: np.ndarray | None = None, *,
                 augment: bool = False) -> None:
        self.split = split
        self.indices = np.arange(len(split)) if indices is None else indices
        self.vocab = Vocabulary(split.alphabet)
        self.length = split.config.max_digits + 2
        self.augment = augment

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        j = int(self.indices[i])
        img = torch.from_numpy(self.split.images[j]).float().div_(255.0)[None]
        if self.augment:
            img = _jitter(img)
        return img, self.vocab.encode(self.split.texts[j], self.length)


def _jitter(img: Tensor) -> Tensor:
    """A small random affine map (shift up to 3 x 2 pixels, scale 0.9-1.05, shear 5 deg):
    the string stays readable and its text unchanged."""
    from torchvision.transforms.v2 import functional as TF

    g = torch.rand(4).tolist()
    return TF.affine(img, angle=0.0, translate=[round(6 * g[0] - 3), round(4 * g[1] - 2)],
                     scale=0.9 + 0.15 * g[2], shear=[10 * g[3] - 5, 0.0])


class SequenceEvaluator:
    """Sequence accuracy and character error rate of decoded tokens against targets."""

    def __init__(self, vocab: Vocabulary, *, keep_examples: int = 20) -> None:
        self.vocab = vocab
        self.keep_examples = keep_examples
        self.reset()

    def reset(self) -> None:
        self._sums = torch.zeros(4, dtype=torch.float64)  # exact, edits, ref chars, count
        self.mistakes: list[tuple[str, str]] = []  # (reference, hypothesis)

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        for pred, tgt in zip(predictions.tolist(), targets.tolist(), strict=True):
            hyp, ref = self.vocab.decode(pred), self.vocab.decode(tgt[1:])
            self._sums += torch.tensor([hyp == ref, edit_distance(hyp, ref), len(ref), 1],
                                       dtype=torch.float64)
            if hyp != ref and len(self.mistakes) < self.keep_examples:
                self.mistakes.append((ref, hyp))

    def compute(self) -> dict[str, float]:
        if not self._sums[3]:
            raise ValueError("SequenceEvaluator.compute() before any update()")
        sums = dist_utils.all_reduce_sum({"s": self._sums}, torch.device("cpu"))["s"]
        self.count = int(sums[3])
        return {"seq_acc": float(sums[0] / sums[3]), "cer": float(sums[1] / sums[2])}


def _root(cfg: SequenceConfig, data: str | None = None) -> Path:
    spec = parse_data_spec(data or cfg.data)
    if spec.kind != "strings":
        raise InvalidArgumentError(f"--data {data or cfg.data!r}: expected strings:DIR")
    return Path(spec.name)


def _split(cfg: SequenceConfig, split: str, data: str | None = None, *,
           train: bool = False) -> StringsDataset:
    root = _root(cfg, data)
    have = strings_splits(root)
    if split == "test" and "test" not in have:
        split = "val"
    if split == "val" and "val" not in have:  # hold out the tail of train
        strings = load_strings(root, "train")
        n = len(strings)
        cut = n - max(1, int(round(n * HOLDOUT_FRACTION)))
        return StringsDataset(strings, np.arange(cut, n))
    strings = load_strings(root, split)
    indices = np.arange(len(strings))
    if split == "train" and "val" not in have:
        indices = indices[:len(indices) - max(1, int(round(len(indices) * HOLDOUT_FRACTION)))]
    return StringsDataset(strings, indices, augment=train and cfg.augment)


def _head(ds: StringsDataset, n: int | None) -> StringsDataset:
    if n is not None and n < len(ds):
        ds.indices = ds.indices[:n]
    return ds


@register_job
class SequenceJob(Job):
    name = "sequence"
    monitor = ("val_seq_acc", "max")
    predict_options = frozenset()
    eval_batch_size = 256

    def build_data(self, cfg: SequenceConfig) -> DataParts:
        train = _head(_split(cfg, "train", train=True), cfg.train_subset)
        val = _head(_split(cfg, "val"), cfg.eval_subset)
        test = _head(_split(cfg, "test"), cfg.eval_subset)
        c = train.split.config
        meta = {"alphabet": train.split.alphabet, "max_length": c.max_digits,
                "height": c.height, "width": c.width}
        return DataParts(train=train, val=val, test=test, meta=meta)

    def build_model(self, cfg: SequenceConfig, meta: dict, *, pretrained: bool = True
                    ) -> nn.Module:
        if cfg.weights is not None:
            raise InvalidArgumentError("--weights: sequence models have no torchvision "
                                       "weights")
        kwargs = dict(cfg.model_kwargs)
        return create(cfg.model, alphabet=meta["alphabet"], max_length=meta["max_length"],
                      beam_size=cfg.beam_size, label_smoothing=cfg.label_smoothing, **kwargs)

    def build_evaluator(self, cfg: SequenceConfig, meta: dict, dataset: Dataset
                        ) -> SequenceEvaluator:
        return SequenceEvaluator(Vocabulary(meta["alphabet"]))

    def split_dataset(self, cfg: SequenceConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        return _split(cfg, split, data)

    def write_test_artefacts(self, run_dir: Path, evaluator: SequenceEvaluator,
                             cfg: SequenceConfig, meta: dict, metrics: dict) -> None:
        lines = ["reference,read"] + [f"{r},{h}" for r, h in evaluator.mistakes]
        (run_dir / "test_mistakes.csv").write_text("\n".join(lines) + "\n")

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test sequence accuracy {metrics['test_seq_acc']:.4f}, character error rate "
                f"{metrics['test_cer']:.4f} on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        from PIL import Image

        from modernvision.data.io import read_image

        h, w = run.meta["height"], run.meta["width"]
        device = next(run.model.parameters()).device
        results = []
        for path in paths:
            img = read_image(path, mode="L")
            if img.shape != (h, w):
                img = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
            x = torch.from_numpy(img).float().div(255.0)[None, None].to(device)
            text = run.model.read(x)[0]
            results.append({"image": str(path), "string": text, "text": f"{path}: {text}"})
        return results
