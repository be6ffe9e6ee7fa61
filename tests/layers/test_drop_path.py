"""Stochastic depth against torchvision.ops.stochastic_depth ("row" mode)."""

import pytest
import torch
from torchvision.ops import stochastic_depth

from modernvision.layers.drop_path import DropPath, drop_path


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_matches_torchvision_row_mode(p):
    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(7)
    want = stochastic_depth(x, p, "row", training=True)
    torch.manual_seed(7)
    got = drop_path(x, p, training=True)
    assert torch.equal(got, want)


def test_whole_samples_dropped_and_survivors_rescaled():
    x = torch.ones(4000, 2, 3)
    y = drop_path(x, 0.25)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.03  # ~4.3 sigma


def test_eval_is_identity_and_module_wrapper():
    x = torch.randn(8, 5)
    assert drop_path(x, 0.9, training=False) is x
    m = DropPath(0.9).eval()
    assert m(x) is x
    assert "p=0.9" in repr(m)


def test_bad_probability():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        drop_path(torch.ones(2), 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DropPath(-0.1)
