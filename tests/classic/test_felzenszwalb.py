"""Felzenszwalb-Huttenlocher segmentation against ``skimage.segmentation.felzenszwalb``.

Equality is exact: the same labels, numbered the same way (skimage numbers segments by their
first pixel too), which is stronger than equality up to relabelling.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.segmentation import felzenszwalb as skimage_felzenszwalb

from modernvision._errors import InvalidArgumentError
from modernvision.classic.felzenszwalb import edge_weights, felzenszwalb
from modernvision.data import load_photo, quokka


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to relabelling: the label pairs are a bijection."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


CROPS = {
    "astronaut": lambda: load_photo("astronaut")[40:200, 150:310],  # the face, colour
    "coffee": lambda: load_photo("coffee")[100:260, 200:380],
    "chelsea": lambda: load_photo("chelsea")[60:220, 100:260],
    "quokka": lambda: quokka()[0][200:360, 300:500],
    "camera": lambda: load_photo("camera")[50:230, 180:340],  # grey
    "coins": lambda: load_photo("coins")[:150, :200],  # grey
    "brick": lambda: load_photo("brick")[:128, :160],  # grey texture
}


@pytest.mark.parametrize("name", sorted(CROPS))
@pytest.mark.parametrize("scale, sigma, min_size",
                         [(50, 0.8, 50), (300, 0.8, 300), (1, 0.5, 20), (10, 0.0, 5)])
def test_equals_skimage_on_real_photos(name, scale, sigma, min_size):
    image = CROPS[name]()
    ours = felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size)
    ref = skimage_felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size)
    assert ours.shape == image.shape[:2] and ours.dtype == np.int64
    assert _same_partition(ours, ref)
    np.testing.assert_array_equal(ours, ref)
    assert ours.max() > 0  # a real segmentation, not one region


def test_equals_skimage_on_a_whole_photo():
    image = load_photo("astronaut")
    for scale in (50, 100):
        ref = skimage_felzenszwalb(image, scale=scale, sigma=0.8, min_size=scale)
        np.testing.assert_array_equal(felzenszwalb(image, scale=scale, sigma=0.8,
                                                   min_size=scale), ref)


def test_float_uint16_and_tensor_inputs_equal_skimage():
    rgb = load_photo("chelsea")[:96, :128]
    as_float = rgb.astype(np.float32) / 255
    np.testing.assert_array_equal(
        felzenszwalb(as_float, scale=100, sigma=0.8, min_size=30),
        skimage_felzenszwalb(as_float, scale=100, sigma=0.8, min_size=30))
    grey16 = load_photo("camera")[:96, :96].astype(np.uint16) * 257
    np.testing.assert_array_equal(
        felzenszwalb(grey16, scale=100, sigma=0.8, min_size=30),
        skimage_felzenszwalb(grey16, scale=100, sigma=0.8, min_size=30))
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)  # [3, H, W]
    out = felzenszwalb(tensor, scale=100, sigma=0.8, min_size=30)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), skimage_felzenszwalb(rgb, scale=100, sigma=0.8,
                                                                    min_size=30))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5, 3)])
def test_tiny_images_equal_skimage(shape):
    image = load_photo("coffee")[: shape[0], : shape[1]]
    if len(shape) == 2:
        image = image[..., 0]
    np.testing.assert_array_equal(felzenszwalb(image, scale=5, sigma=0.8, min_size=2),
                                  skimage_felzenszwalb(image, scale=5, sigma=0.8, min_size=2))


@pytest.mark.parametrize("channels", range(1, 10))
def test_edge_weights_sum_channels_in_numpys_order(channels):
    image = np.random.default_rng(channels).random((13, 17, channels)) ** 3

    def dist(a, b):
        return np.sqrt(np.sum((a - b) * (a - b), axis=-1)).ravel()

    ref = np.concatenate([dist(image[:, 1:], image[:, :-1]), dist(image[1:], image[:-1]),
                          dist(image[1:, 1:], image[:-1, :-1]), dist(image[1:, :-1],
                                                                     image[:-1, 1:])])
    np.testing.assert_array_equal(edge_weights(image), ref)  # bit for bit


def test_min_size_is_enforced_and_scale_grows_segments():
    image = load_photo("coffee")[:120, :160]
    counts = []
    for scale in (10, 100, 1000):
        labels = felzenszwalb(image, scale=scale, sigma=0.8, min_size=40)
        assert np.bincount(labels.ravel()).min() >= 40
        counts.append(labels.max() + 1)
    assert counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize(
    "kwargs, image, message",
    [
        ({"scale": 0}, np.zeros((4, 4), np.uint8), "scale"),
        ({"sigma": -1}, np.zeros((4, 4), np.uint8), "sigma"),
        ({"min_size": 2.5}, np.zeros((4, 4), np.uint8), "min_size"),
        ({}, np.zeros((0, 4), np.uint8), "non-empty"),
        ({}, np.zeros((4,), np.uint8), "non-empty"),
        ({}, np.zeros((4, 4), np.int32), "uint8"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, image, message):
    with pytest.raises(InvalidArgumentError, match=message):
        felzenszwalb(image, **kwargs)
