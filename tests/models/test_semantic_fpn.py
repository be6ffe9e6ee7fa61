"""Semantic FPN: logits at the input size, the extra P2 step, transfer from our detector."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError
from modernvision.models import create, list_models
from modernvision.models.pretrained import load_own_weights
from modernvision.models.segmentation.semantic_fpn import SemanticFPNConfig, semantic_fpn


def test_registered_as_semantic_and_logits_at_any_input_size() -> None:
    assert {"semantic_fpn_resnet50", "semantic_fpn_mobilenet_v2_050"} <= set(
        list_models("semantic"))
    torch.manual_seed(0)
    model = create("semantic_fpn_mobilenet_v2_050", num_classes=5).eval()
    with torch.no_grad():
        for h, w in ((65, 97), (128, 128), (33, 250)):
            assert model(torch.randn(1, 3, h, w)).shape == (1, 5, h, w)


def test_paper_config_reads_p2_to_p5_with_a_128_channel_branch() -> None:
    model = create("semantic_fpn_resnet50", num_classes=7)
    assert model.fine_level is None and model.fine_lateral is None
    assert model.head.level_names == ["p2", "p3", "p4", "p5"]
    assert model.backbone.fpn.out_channels == 256
    assert model.head.predictor.in_channels == 128 and model.head.predictor.out_channels == 7
    # P5 at stride 32 needs three conv + 2x stages to reach 1/4 scale, P2 one conv.
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in h) for h in model.head.scale_heads]
    assert convs == [1, 1, 2, 3]


def test_fine_level_is_one_more_top_down_step() -> None:
    torch.manual_seed(0)
    model = create("semantic_fpn_mobilenet_v2_050", num_classes=3).eval()
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        levels = model.pyramid(x)
        stages = model.backbone.body(x)
        p3 = model.backbone(x)["p3"]
        lateral = model.fine_lateral(stages["c2"])
        expected = model.fine_output(lateral + F.interpolate(p3, size=lateral.shape[-2:]))
    assert list(levels) == ["p2", "p3", "p4", "p5"]
    assert levels["p2"].shape == (2, 64, 24, 16)
    torch.testing.assert_close(levels["p2"], expected)
    torch.testing.assert_close(levels["p3"], p3)


def test_a_trained_detector_initialises_its_backbone_and_fpn(tmp_path) -> None:
    torch.manual_seed(1)
    detector = create("fasterrcnn_mobilenet_v2_050_fpn", num_classes=21).eval()
    path = tmp_path / "detector.pt"
    torch.save({"model": detector.state_dict()}, path)
    torch.manual_seed(2)
    model = create("semantic_fpn_mobilenet_v2_050", num_classes=23).eval()
    report = load_own_weights(model, path)
    shared = [k for k in model.state_dict() if k.startswith("backbone.")]
    assert sorted(shared) == report["loaded"] and not report["shape_mismatch"]
    assert all(k.startswith(("head.", "fine_")) for k in report["not_in_source"])
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        ours = model.backbone(x)
        theirs = detector.backbone(x)
    for name in ("p3", "p4", "p5"):
        torch.testing.assert_close(ours[name], theirs[name])


def test_training_loss_is_cross_entropy_over_labelled_pixels() -> None:
    torch.manual_seed(0)
    model = create("semantic_fpn_mobilenet_v2_050", num_classes=4).train()
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 4, (2, 64, 64))
    target[:, :32] = 255
    with torch.no_grad():  # train-mode batch norm uses the batch's statistics: same logits
        logits = model.forward_logits(x)
    got = model(x, target)["loss"]
    torch.testing.assert_close(got, F.cross_entropy(logits, target, ignore_index=255))
    assert not torch.allclose(got, F.cross_entropy(logits, target.clamp(max=3)))


def test_bad_configs_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="fine_level"):
        SemanticFPNConfig("resnet18", levels=("c2", "c3"), fine_level="c2")
    with pytest.raises(InvalidArgumentError, match="finer"):
        semantic_fpn(SemanticFPNConfig("resnet18", levels=("c3", "c4"), fine_level="c5",
                                       fpn_channels=32, head_channels=32), num_classes=2)
    with pytest.raises(InvalidArgumentError, match="head_groups"):
        SemanticFPNConfig("resnet18", head_channels=48)
    with pytest.raises(TypeError, match="Semantic FPN"):
        create("semantic_fpn_mobilenet_v2_050", num_classes=2, fpn_width=3)
