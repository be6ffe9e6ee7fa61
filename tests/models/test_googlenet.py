"""GoogLeNet (paper) and torchvision's GoogLeNet, against torchvision and the paper's Table 1."""

import pytest
import torch
import torchvision
from torch import nn

from modernvision.analysis import summarize
from modernvision.layers.inception import InceptionModule, NaiveInceptionModule
from modernvision.layers.lrn import LocalResponseNorm
from modernvision.models import create
from modernvision.models.classification._base import AuxOutput


@pytest.mark.parametrize(("aux", "expected"), [(True, 13_004_888), (False, 6_624_904)])
def test_googlenet_tv_param_count_matches_torchvision(aux, expected, num_params):
    with torch.device("meta"):
        ours = create("googlenet_tv", aux_logits=aux)
        ref = torchvision.models.googlenet(aux_logits=aux, init_weights=True)
    assert num_params(ours) == num_params(ref) == expected


def test_googlenet_tv_defaults_match_torchvision_weights_none():
    with torch.device("meta"):
        ref = torchvision.models.googlenet(init_weights=True)
        ours = create("googlenet_tv")
    assert ref.aux_logits and not ref.transform_input
    assert ours.aux1 is not None and ours.aux2 is not None and not ours.transform_input


def test_googlenet_tv_converted_weights_give_same_outputs(torchvision_pair):
    ours, ref = torchvision_pair("googlenet_tv", skip_init=True, init_weights=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4
        small = torch.randn(2, 3, 64, 64)  # the input transform, at a cheaper size
        ours.transform_input = ref.transform_input = True
        assert (ours(small) - ref(small)).abs().max().item() <= 1e-4
        ours.transform_input = ref.transform_input = False
        # Training mode: main and both auxiliary outputs, dropout drawn in the same order.
        ours.train(), ref.train()
        torch.manual_seed(1)
        out = ours(x)
        torch.manual_seed(1)
        ref_out = ref(x)
    assert isinstance(out, AuxOutput) and out.aux_weight == 0.3
    assert (out.logits - ref_out.logits).abs().max().item() <= 1e-4
    assert (out.aux_logits[0] - ref_out.aux_logits1).abs().max().item() <= 1e-4  # at 4a
    assert (out.aux_logits[1] - ref_out.aux_logits2).abs().max().item() <= 1e-4  # at 4d


def test_paper_googlenet_matches_table_1():
    model = create("googlenet", aux_logits=False)
    summary = summarize(model, (3, 224, 224))
    macs: dict[str, int] = {}
    for row in summary.rows:
        top = row.name.split(".")[0]
        macs[top] = macs.get(top, 0) + row.macs
    # Table 1's "ops" column (millions of multiply-adds). Two entries do not follow from the
    # table's own widths and are left out: conv1 (34M; 7x7x3x64 at 112x112 is 118M) and 5a.
    table_ops = {"inception3a": 128, "inception3b": 304, "inception4a": 73, "inception4b": 88,
                 "inception4c": 100, "inception4d": 119, "inception4e": 170, "inception5b": 71}
    for name, ops in table_ops.items():
        assert macs[name] / 1e6 == pytest.approx(ops, rel=0.015), name
    assert (macs["conv2"] + macs["conv3"]) / 1e6 == pytest.approx(360, rel=0.015)
    # "1.5 billion multiply-adds" (Sec. 1); the 5x5 branches put it slightly above.
    assert summary.total_macs / 1e9 == pytest.approx(1.5, rel=0.06)
    # Table 1's output sizes: 28x28x256 after 3a ... 7x7x1024 after 5b.
    rows = {r.name: r for r in summary.rows}
    assert rows["inception3b.branch4.1.act"].output_shape[-1] == 28
    with torch.device("meta"):
        stages = model.to("meta").forward_stages(torch.empty(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c1": (64, 112, 112), "c2": (192, 56, 56), "c3": (480, 28, 28), "c4": (832, 14, 14),
        "c5": (1024, 7, 7)}


def test_paper_googlenet_structure():
    with torch.device("meta"):
        model = create("googlenet")
        model.train()
        out = model(torch.empty(2, 3, 224, 224))
        model.eval()
        eval_out = model(torch.empty(2, 3, 224, 224))
    assert isinstance(out, AuxOutput) and out.aux_weight == 0.3
    assert [a.shape for a in out.aux_logits] == [(2, 1000), (2, 1000)]
    assert isinstance(eval_out, torch.Tensor) and eval_out.shape == (2, 1000)
    # LRN after the first pool and after the 3x3 conv; no batch norm anywhere.
    names = [n for n, _ in model.named_children()]
    assert names[:8] == ["conv1", "maxpool1", "norm1", "conv2", "conv3", "norm2", "maxpool2",
                         "inception3a"]
    assert isinstance(model.norm1, LocalResponseNorm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.inception4a.branch3[1].conv.kernel_size == (5, 5)
    assert model.maxpool4.kernel_size == 3
    assert model.dropout.p == 0.4
    # Auxiliary heads (Sec. 5) on 4a (512 channels) and 4d (528).
    for aux, channels in [(model.aux1, 512), (model.aux2, 528)]:
        assert isinstance(aux.pool, nn.AvgPool2d)
        assert (aux.pool.kernel_size, aux.pool.stride) == (5, 3)
        assert aux.conv.conv.in_channels == channels and aux.conv.conv.out_channels == 128
        assert (aux.fc1.in_features, aux.fc1.out_features) == (2048, 1024)
        assert aux.dropout.p == 0.7


def test_naive_inception_module_is_selectable(num_params):
    with torch.device("meta"):
        naive = create("googlenet", inception_module="naive", aux_logits=False)
        reduced = create("googlenet", aux_logits=False)
        out = naive(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    assert all(isinstance(getattr(naive, f"inception{s}"), NaiveInceptionModule)
               for s in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"])
    assert isinstance(reduced.inception3a, InceptionModule)
    # The pool branch passes its input through, so widths pile up: 192 + 64 + 128 + 32 = 416
    # after 3a ... 4,944 after 5b, and the parameters grow fourteen-fold.
    assert naive.inception3a.out_channels == 416
    assert naive.fc.in_features == 4944
    assert num_params(naive) > 10 * num_params(reduced)
    with pytest.raises(ValueError, match="inception_module"):
        create("googlenet", inception_module="wide")


def test_googlenet_tv_macs_match_torchvision_published_gflops():
    published = torchvision.models.get_model_weights("googlenet").DEFAULT.meta["_ops"]  # 1.498
    macs = summarize(create("googlenet_tv"), (3, 224, 224)).total_macs / 1e9
    assert macs == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize(("name", "channels"), [("googlenet", 1), ("googlenet_tv", 3)])
def test_small_input_every_parameter_gets_a_gradient(name, channels):
    model = create(name, num_classes=10, small_input=True, in_channels=channels).train()
    out = model(torch.randn(2, channels, 16, 16))  # 28x28 / 32x32 are checked on "meta" below
    assert isinstance(out, AuxOutput) and len(out.aux_logits) == 2
    total = out.logits.square().sum() + sum(a.square().sum() for a in out.aux_logits)
    total.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, 16, 16))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    with torch.device("meta"):
        model.to("meta")
        for size in (28, 32):
            model.train()
            out = model(torch.empty(2, channels, size, size))
            assert [a.shape for a in [out.logits, *out.aux_logits]] == [(2, 10)] * 3
            model.eval()
            stages = model.forward_stages(torch.empty(1, channels, size, size))
            assert [(k, v.shape[1]) for k, v in stages.items()] == [
                (f.name, f.channels) for f in model.feature_info]
    assert [f.stride for f in model.feature_info] == [2, 4, 8]
    assert [v.shape[-1] for v in stages.values()] == [16, 8, 4]  # at 32x32


def test_bad_inputs_are_refused():
    model = create("googlenet", num_classes=10).train()
    with pytest.raises(ValueError, match="auxiliary classifier"):
        model(torch.randn(2, 3, 112, 112))
    with pytest.raises(ValueError, match="at least"):
        model.eval()(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="transform_input"):
        create("googlenet_tv", in_channels=1, transform_input=True)
