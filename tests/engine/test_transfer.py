"""Transfer learning offline: a locally saved torchvision state dict, then frozen-backbone and
full fine-tuning through the Trainer."""

import pytest
import torch
import torchvision
from torch.utils.data import TensorDataset

from modernvision.engine import ClassificationTask, Trainer
from modernvision.engine.tasks import split_parameters
from modernvision.models import create
from modernvision.models.pretrained import WeightsUnavailableError
from modernvision.optim import SGD


@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    path = tmp_path_factory.mktemp("w") / "resnet18_tv.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


def _data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(16, 3, 32, 32, generator=g), torch.arange(16) % 3)


def test_weights_from_path_load_backbone_and_reset_head(tv_weights):
    tv, path = tv_weights
    model = create("resnet18", num_classes=3, weights=str(path))
    ours = model.state_dict()
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(ours[k], v), k
    assert model.pretrained_skipped == ["fc.weight", "fc.bias"]
    assert ours["fc.weight"].shape == (3, 512)


def test_frozen_backbone_trains_only_the_head(tv_weights):
    _, path = tv_weights
    model = create("resnet18", num_classes=3, weights=str(path))
    task = ClassificationTask(model, 3, transfer="freeze")
    backbone, head = split_parameters(model)
    before_bb = [p.detach().clone() for p in backbone]
    before_head = [p.detach().clone() for p in head]
    bn_stats = model.bn1.running_mean.clone()
    opt = SGD(task.param_groups(0.1), lr=0.1)
    Trainer(task, opt, _data(), epochs=1, batch_size=8, progress=False).fit()
    assert all(torch.equal(a, b) for a, b in zip(before_bb, backbone))
    assert torch.equal(bn_stats, model.bn1.running_mean)  # frozen BN keeps its statistics
    assert not all(torch.equal(a, b) for a, b in zip(before_head, head))
    assert len(opt.param_groups) == 1  # frozen parameters are not even handed to the optimizer


def test_finetune_all_with_lower_backbone_lr(tv_weights):
    _, path = tv_weights
    model = create("resnet18", num_classes=3, weights=str(path))
    task = ClassificationTask(model, 3, transfer="finetune")
    groups = task.param_groups(0.1, backbone_lr_mult=0.01)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[1]["lr"] == pytest.approx(1e-3)
    backbone, _ = split_parameters(model)
    before = [p.detach().clone() for p in backbone]
    Trainer(task, SGD(groups, lr=0.1), _data(), epochs=1, batch_size=8, progress=False).fit()
    assert not all(torch.equal(a, b) for a, b in zip(before, backbone))


def test_torchvision_weights_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    import socket

    def no_net(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_net)
    with pytest.raises(WeightsUnavailableError, match="not cached"):
        create("resnet18", weights="torchvision")


def test_bad_weights_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create("resnet18", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="no torchvision counterpart"):
        create("compact_cnn", weights="torchvision")


def test_load_own_weights_by_name_and_shape(tmp_path):
    """A ResNet-18 classifier of 10 classes starts a 5-class one: all but the head load."""
    from modernvision.models.pretrained import load_own_weights

    torch.manual_seed(0)
    source = create("resnet18", num_classes=10)
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    torch.manual_seed(1)
    target = create("resnet18", num_classes=5)
    fresh_fc = target.fc.weight.detach().clone()
    report = load_own_weights(target, tmp_path / "ckpt.pt")
    assert report["shape_mismatch"] == ["fc.bias", "fc.weight"]
    assert report["not_in_source"] == []
    assert len(report["loaded"]) == len(source.state_dict()) - 2
    torch.testing.assert_close(target.conv1.weight, source.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(target.fc.weight, fresh_fc, rtol=0, atol=0)
    # A run folder (model_final.pt) and a plain state dict work the same way.
    (tmp_path / "run").mkdir()
    torch.save({"model": source.state_dict()}, tmp_path / "run" / "model_final.pt")
    assert load_own_weights(create("resnet18", num_classes=5), tmp_path / "run")["loaded"] \
        == report["loaded"]
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    assert len(load_own_weights(create("resnet18", num_classes=10),
                                tmp_path / "plain.pt")["loaded"]) == len(source.state_dict())


def test_load_own_weights_errors(tmp_path):
    from modernvision._errors import BadFileError, MissingFileError
    from modernvision.models.pretrained import load_own_weights

    model = create("resnet18", num_classes=5)
    with pytest.raises(MissingFileError, match="no such run folder"):
        load_own_weights(model, tmp_path / "missing")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(MissingFileError, match="holds no weights"):
        load_own_weights(model, tmp_path / "empty_run")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadFileError, match="cannot read it"):
        load_own_weights(model, tmp_path / "junk.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(BadFileError, match="expected a state dict"):
        load_own_weights(model, tmp_path / "list.pt")
    torch.save({"model": create("compact_cnn").state_dict()}, tmp_path / "other.pt")
    with pytest.raises(BadFileError, match="none of its"):
        load_own_weights(model, tmp_path / "other.pt")
