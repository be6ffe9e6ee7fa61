"""Digit strings: 1-6 real MNIST digits composited side by side, for image-to-sequence models.

Each image is a ``height x width`` grey canvas (white strokes on black, as MNIST) holding a
left-to-right string of ``min_digits..max_digits`` digits drawn from the matching split of
``mnist-5k`` (train strings from training digits, val from val, test from test, so a held-out
string never reuses a training digit's pixels). Each digit is cropped to its ink, scaled to a
random height (``0.65..0.9`` of the canvas), shifted up or down a little and placed after the
previous one with a random gap (-3..+4 pixels: digits may touch or overlap slightly, composited
by maximum); a string too wide for the canvas is scaled down as a whole; the string starts at
a random offset. The number of digits is uniform over ``min_digits..max_digits`` and the digits
are uniform over 0-9. Image ``i`` depends only on ``(seed, split, i)`` and the sizes.

Layout of :func:`make_strings` under ``DIR``: ``<split>/<i>.png`` and ``<split>/labels.csv``
(``file,text``), plus ``strings.json`` (height, width, digit counts, alphabet) shared by the
splits of one folder. :func:`load_strings` reads a split back into memory.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError

__all__ = ["ALPHABET", "StringsConfig", "StringsSplit", "load_strings", "make_strings",
           "render_string"]

ALPHABET = "0123456789"
_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class StringsConfig:
    """Canvas size and string lengths of a strings folder."""

    height: int = 32
    width: int = 128
    min_digits: int = 1
    max_digits: int = 6

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise InvalidArgumentError(f"height and width must be >= 16, got {self.height} x "
                                       f"{self.width}")
        if not 1 <= self.min_digits <= self.max_digits:
            raise InvalidArgumentError(f"need 1 <= min_digits <= max_digits, got "
                                       f"{self.min_digits} and {self.max_digits}")


@dataclass
class StringsSplit:
    """A split in memory: ``images`` uint8 ``[N, H, W]``, ``texts`` and the folder's config."""

    images: np.ndarray
    texts: list[str]
    config: StringsConfig
    alphabet: str = ALPHABET

    def __len__(self) -> int:
        return len(self.texts)


def _crop_ink(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(digit > 30)
    if len(rows) == 0:
        return digit
    return digit[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def render_string(digits: list[np.ndarray], rng: np.random.Generator,
                  config: StringsConfig) -> np.ndarray:
    """Composite digit images (uint8, any size) left to right onto one canvas."""
    from PIL import Image

    h, w = config.height, config.width
    pieces = []
    for d in digits:
        ink = _crop_ink(d)
        target_h = max(4, int(round(h * rng.uniform(0.65, 0.9))))
        scale = target_h / ink.shape[0]
        target_w = max(2, int(round(ink.shape[1] * scale)))
        img = np.asarray(Image.fromarray(ink).resize((target_w, target_h), Image.BILINEAR))
        pieces.append((img, int(rng.integers(-3, 5)), rng.uniform(-0.1, 0.1)))
    total = sum(p[0].shape[1] for p in pieces) + sum(g for _, g, _ in pieces[1:])
    shrink = min(1.0, (w - 4) / max(total, 1))
    canvas = np.zeros((h, w), dtype=np.uint8)
    widths = [max(2, int(p[0].shape[1] * shrink)) for p in pieces]
    total = sum(widths) + sum(int(g * shrink) for _, g, _ in pieces[1:])
    x = int(rng.integers(0, max(1, w - total)))
    for (img, gap, dy), pw in zip(pieces, widths, strict=True):
        if shrink < 1.0:
            ph = max(4, int(img.shape[0] * shrink))
            img = np.asarray(Image.fromarray(img).resize((pw, ph), Image.BILINEAR))
        ph = img.shape[0]
        y = int(np.clip((h - ph) / 2 + dy * h, 0, h - ph))
        x0 = int(np.clip(x, 0, w - img.shape[1]))
        region = canvas[y:y + ph, x0:x0 + img.shape[1]]
        np.maximum(region, img[:region.shape[0], :region.shape[1]], out=region)
        x = x0 + img.shape[1] + int(gap * shrink)
    return canvas


def _split_seed(seed: int, split: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, _SPLIT_SEED[split]])


def make_strings(out_dir: str | Path, images: int, seed: int = 0, *, split: str = "train",
                 config: StringsConfig | None = None, overwrite: bool = False) -> Path:
    """Write ``images`` digit strings of ``split`` under ``out_dir`` (see the module).

    Returns:
        the split folder.

    Raises:
        InvalidArgumentError: the split exists (without ``overwrite``), or ``out_dir`` holds a
            strings folder of other sizes.
    """
    from PIL import Image

    from modernvision.data.datasets import load_arrays

    config = config or StringsConfig()
    if split not in _SPLIT_SEED:
        raise InvalidArgumentError(f"split must be train, val or test, got {split!r}")
    if not isinstance(images, int) or images < 1:
        raise InvalidArgumentError(f"images must be a positive integer, got {images!r}")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise InvalidArgumentError(f"--out {root} is a file, expected a folder")
    meta_path = root / "strings.json"
    meta = asdict(config) | {"alphabet": ALPHABET}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old != meta:
            raise InvalidArgumentError(
                f"--out {root} holds strings of other sizes ({old}); use another folder")
    elif root.is_dir() and any(root.iterdir()):
        raise InvalidArgumentError(f"--out {root} is not empty and is not a strings folder; "
                                   "choose a new or empty folder")
    folder = root / split
    if folder.exists():
        if not overwrite:
            raise InvalidArgumentError(f"--out {root} already holds the {split!r} split; pass "
                                       "--overwrite to replace it, or choose another folder")
        shutil.rmtree(folder)
    digits = load_arrays("mnist-5k", split)
    by_class = [np.flatnonzero(digits.labels == c) for c in range(10)]
    folder.mkdir(parents=True)
    rows = []
    for i, child in enumerate(_split_seed(seed, split).spawn(images)):
        rng = np.random.default_rng(child)
        n = int(rng.integers(config.min_digits, config.max_digits + 1))
        labels = rng.integers(0, 10, size=n)
        picks = [digits.images[by_class[c][rng.integers(len(by_class[c]))]] for c in labels]
        canvas = render_string(picks, rng, config)
        name = f"{i:06d}.png"
        Image.fromarray(canvas).save(folder / name)
        rows.append((name, "".join(ALPHABET[c] for c in labels)))
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file", "text"))
        writer.writerows(rows)
    meta_path.write_text(json.dumps(meta, indent=2))
    return folder


def strings_splits(root: str | Path) -> list[str]:
    """The splits a strings folder holds."""
    return [s for s in _SPLIT_SEED if (Path(root) / s / "labels.csv").is_file()]


def load_strings(root: str | Path, split: str) -> StringsSplit:
    """Read a split written by :func:`make_strings` (or laid out like one)."""
    from PIL import Image

    root = Path(root)
    meta_path = root / "strings.json"
    if not meta_path.is_file():
        raise MissingFileError(f"{root} is not a strings folder (no strings.json); write one "
                               "with `modernvision data make-strings --out DIR`")
    try:
        meta = json.loads(meta_path.read_text())
        alphabet = meta.pop("alphabet")
        config = StringsConfig(**meta)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadFileError(f"{meta_path} is not a strings.json ({exc})") from exc
    labels = root / split / "labels.csv"
    if not labels.is_file():
        have = ", ".join(strings_splits(root)) or "none"
        raise MissingFileError(f"{root} has no {split!r} split (splits: {have}); write it with "
                               f"`modernvision data make-strings --out {root} --split {split}`")
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))
    images = np.zeros((len(rows), config.height, config.width), dtype=np.uint8)
    texts = []
    for i, row in enumerate(rows):
        text = row.get("text", "")
        if not text or any(ch not in alphabet for ch in text):
            raise BadFileError(f"{labels}: row {i + 2} has text {text!r}; expected 1 or more "
                               f"characters of {alphabet!r}")
        path = root / split / row["file"]
        if not path.is_file():
            raise MissingFileError(f"{labels}: row {i + 2} names {path}, which does not exist")
        img = np.asarray(Image.open(path).convert("L"))
        if img.shape != (config.height, config.width):
            raise BadFileError(f"{path} is {img.shape[1]}x{img.shape[0]}; the folder's images "
                               f"are {config.width}x{config.height}")
        images[i] = img
        texts.append(text)
    return StringsSplit(images, texts, config, alphabet)
