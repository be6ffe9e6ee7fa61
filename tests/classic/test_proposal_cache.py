"""Proposals computed once per data set, stored next to the images and loaded back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modernvision.classic.proposal_cache as cache_module
from modernvision._errors import InvalidArgumentError
from modernvision.classic.proposal_cache import (
    ProposalSettings,
    dataset_proposals,
    proposal_cache_file,
)
from modernvision.data import SceneConfig, make_scenes, read_coco, scene_instances
from modernvision.data.formats.dataset import load_rgb


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 3, seed=0, split="val",
                config=SceneConfig(height=72, width=80, max_object_size=40, max_objects=3))
    return root


def _forbid_computing(monkeypatch):
    def fail(self, image):
        raise AssertionError("proposals were recomputed")

    monkeypatch.setattr(cache_module.ProposalSettings, "compute", fail)


def test_computed_once_then_loaded(scenes, monkeypatch):
    dataset = scene_instances(scenes, "val")
    settings = ProposalSettings(mode="single", top=50)
    lines = []
    first = dataset_proposals(dataset, settings=settings, log=lines.append)
    path = proposal_cache_file(scenes / "images" / "val", settings)
    assert path.is_file() and path.parent == scenes / "images"
    assert "3 computed" in lines[-1]
    assert sorted(first) == [1, 2, 3]
    for rec in dataset.records.images:
        expected = settings.compute(load_rgb(scenes / "images" / "val" / rec.file_name))
        torch.testing.assert_close(first[rec.image_id], expected, rtol=0, atol=0)
        assert 0 < len(expected) <= 50
    _forbid_computing(monkeypatch)
    again = dataset_proposals(dataset, settings=settings, log=lines.append)
    assert "3 loaded" in lines[-1]
    for image_id, boxes in first.items():
        torch.testing.assert_close(again[image_id], boxes, rtol=0, atol=0)


def test_other_settings_get_their_own_file_and_only_missing_images_are_computed(scenes):
    records = read_coco(scenes / "annotations" / "instances_val.json")
    image_dir = scenes / "images" / "val"
    a, b = ProposalSettings(mode="single", seed=0), ProposalSettings(mode="single", seed=1)
    assert a.digest() != b.digest() and a.digest() == ProposalSettings(mode="single").digest()
    assert proposal_cache_file(image_dir, a) != proposal_cache_file(image_dir, b)
    partial = type(records)(images=records.images[:1], categories=records.categories)
    lines = []
    dataset_proposals(partial, image_dir, settings=b, log=lines.append)
    assert "1 computed" in lines[-1]
    dataset_proposals(records, image_dir, settings=b, log=lines.append)
    assert "1 loaded" in lines[-1] and "2 computed" in lines[-1]


def test_a_corrupt_or_foreign_file_is_recomputed(scenes, tmp_path):
    dataset = scene_instances(scenes, "val")
    settings = ProposalSettings(mode="single", top=10)
    target = tmp_path / "props.npz"
    target.write_bytes(b"not a zip file")
    lines = []
    out = dataset_proposals(dataset, settings=settings, cache_file=target, log=lines.append)
    assert "recomputing" in lines[0] and "3 computed" in lines[-1]
    with np.load(target) as data:
        assert str(data["digest"]) == settings.digest()
        assert data["offsets"][-1] == sum(len(v) for v in out.values())
    other = ProposalSettings(mode="single", top=5)
    out5 = dataset_proposals(dataset, settings=other, cache_file=target, log=lines.append)
    assert "other settings" in lines[-2] and all(len(v) <= 5 for v in out5.values())


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="image_dir"):
        dataset_proposals(cache_module.DetectionDataset([], []))
    with pytest.raises(InvalidArgumentError, match="InstanceDataset"):
        dataset_proposals([1, 2, 3])
    with pytest.raises(KeyError, match="fast"):
        ProposalSettings(mode="fats")
