"""make-strings: deterministic digit strings from real mnist-5k digits, read back."""

import numpy as np
import pytest

from modernvision._errors import InvalidArgumentError, MissingFileError
from modernvision.data.strings import StringsConfig, load_strings, make_strings


def test_strings_are_deterministic_and_read_back(tmp_path):
    cfg = StringsConfig(min_digits=1, max_digits=6)
    make_strings(tmp_path / "a", 12, 3, config=cfg)
    make_strings(tmp_path / "b", 12, 3, config=cfg)
    a, b = load_strings(tmp_path / "a", "train"), load_strings(tmp_path / "b", "train")
    assert a.texts == b.texts and np.array_equal(a.images, b.images)
    assert a.images.shape == (12, 32, 128) and a.images.dtype == np.uint8
    assert all(1 <= len(t) <= 6 and t.isdigit() for t in a.texts)
    # more digits, more ink: the images hold what the texts say
    ink = (a.images > 100).sum((1, 2))
    lengths = np.array([len(t) for t in a.texts])
    assert np.corrcoef(ink, lengths)[0, 1] > 0.5
    make_strings(tmp_path / "c", 12, 4, config=cfg)
    assert load_strings(tmp_path / "c", "train").texts != a.texts


def test_splits_and_errors(tmp_path):
    make_strings(tmp_path, 3, 0, split="test", config=StringsConfig(max_digits=2))
    with pytest.raises(InvalidArgumentError, match="--overwrite"):
        make_strings(tmp_path, 3, 0, split="test", config=StringsConfig(max_digits=2))
    with pytest.raises(InvalidArgumentError, match="other sizes"):
        make_strings(tmp_path, 3, 0, split="val", config=StringsConfig(max_digits=3))
    with pytest.raises(MissingFileError, match="no 'train' split"):
        load_strings(tmp_path, "train")
    with pytest.raises(InvalidArgumentError, match="min_digits"):
        StringsConfig(min_digits=3, max_digits=2)
