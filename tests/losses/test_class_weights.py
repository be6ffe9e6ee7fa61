"""Median frequency balancing on hand-built label maps, and the weighted segmenter loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError
from modernvision.losses import label_frequencies, median_frequency_weights
from modernvision.models import create


def test_frequencies_count_only_the_images_where_a_class_appears() -> None:
    maps = [torch.tensor([[0, 0], [1, 255]]), torch.tensor([[1, 1], [1, 2]])]
    freq = label_frequencies(maps, 4)
    # class 0: 2 of image 1's 3 labelled pixels; class 1: 4 of 3 + 4; class 2: 1 of 4; 3 absent
    torch.testing.assert_close(freq, torch.tensor([2 / 3, 4 / 7, 1 / 4, 0.0],
                                                  dtype=torch.float64))
    weights = median_frequency_weights(freq)  # median of (2/3, 4/7, 1/4) = 4/7
    torch.testing.assert_close(weights, torch.tensor([6 / 7, 1.0, 16 / 7, 0.0]))


def test_bad_labels_and_frequencies_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match=r"label_maps\[1\]"):
        label_frequencies([torch.zeros(2, 2), torch.full((2, 2), 5)], 3)
    with pytest.raises(InvalidArgumentError, match="positive"):
        median_frequency_weights(torch.zeros(3))


def test_segmenter_loss_uses_the_class_weights() -> None:
    torch.manual_seed(0)
    model = create("unet_padded", num_classes=3, base_width=4).train()
    x, target = torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16))
    target[0, :4] = 255
    weight = torch.tensor([0.2, 1.0, 3.0])
    model.set_class_weight(weight)
    assert "class_weight" not in model.state_dict()  # set by the run's config, not saved
    with torch.no_grad():
        logits = model.forward_logits(x)
    expected = F.cross_entropy(logits, target, weight=weight, ignore_index=255)
    torch.testing.assert_close(model(x, target)["loss"], expected)
    model.set_class_weight(None)
    torch.testing.assert_close(model(x, target)["loss"],
                               F.cross_entropy(logits, target, ignore_index=255))
    with pytest.raises(InvalidArgumentError, match="class_weight must be 3"):
        model.set_class_weight(torch.ones(4))
