"""Vision Transformers against torchvision's vit_* (weights=None)."""

import pytest
import torch
import torchvision
from torchvision.models.vision_transformer import VisionTransformer as TVVisionTransformer
from torchvision.models.vision_transformer import interpolate_embeddings

from modernvision.analysis import summarize
from modernvision.models import convert_torchvision_state_dict, create
from modernvision.models.classification.vit import (
    VisionTransformer,
    ViTConfig,
    convert_torchvision_vit,
)


def _randomize_head(model: torch.nn.Module) -> None:
    # torchvision starts the head at zero, which would make every logit 0.
    with torch.no_grad():
        model.heads.head.weight.normal_(0, 0.02)
        model.heads.head.bias.normal_(0, 0.02)
        model.class_token.normal_(0, 0.02)


def test_vit_b_16_param_count(num_params):
    with torch.device("meta"):
        ours, ref = create("vit_b_16"), torchvision.models.vit_b_16()
    assert num_params(ours) == num_params(ref) == 86_567_656


@pytest.mark.parametrize("name", ["vit_b_32", "vit_l_16", "vit_l_32"])
def test_other_param_counts(name, num_params):
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
        assert ours(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    assert num_params(ours) == num_params(ref)


def test_converted_torchvision_weights_give_same_logits():
    ref = torchvision.models.vit_b_16().eval()
    _randomize_head(ref)
    ours = create("vit_b_16").eval()
    ours.load_state_dict(convert_torchvision_state_dict("vit_b_16", ref.state_dict()))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ref(x)
        assert want.abs().max() > 0.1
        assert (ours(x) - want).abs().max().item() <= 1e-4


def _tiny_pair(image_size: int = 16, **kwargs):
    ref = TVVisionTransformer(image_size, 4, 2, 3, 48, 96, num_classes=7, **kwargs)
    _randomize_head(ref)
    rep = kwargs.get("representation_size")
    ours = VisionTransformer(
        ViTConfig(4, 2, 3, 48, 96, image_size=image_size, representation_size=rep), num_classes=7
    )
    ours.load_state_dict(convert_torchvision_vit(ref.state_dict()))
    return ours, ref


def test_gradients_match_torchvision():
    ours, ref = _tiny_pair(representation_size=24)
    x = torch.randn(3, 3, 16, 16)
    a, b = ours(x), ref(x)
    assert torch.allclose(a, b, atol=1e-5)
    a.square().sum().backward()
    b.square().sum().backward()
    ref_grads = convert_torchvision_vit({n: p.grad for n, p in ref.named_parameters()})
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, ref_grads[name], atol=1e-5), name


def test_other_resolution_interpolates_position_embeddings_like_torchvision():
    ours, ref = _tiny_pair(16)
    ref32 = TVVisionTransformer(32, 4, 2, 3, 48, 96, num_classes=7)
    ref32.load_state_dict(interpolate_embeddings(32, 4, ref.state_dict()))
    ref32.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), ref32(x), atol=1e-5)


def test_macs_match_torchvision_gflops():
    # Attention's softmax(QK^T)V is counted as 2 * N^2 * D MACs per layer (analysis docs).
    ops = torchvision.models.get_model_weights("vit_b_16").DEFAULT.meta["_ops"]
    summary = summarize(create("vit_b_16"), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02


def test_single_scale_feature_map():
    model = create("vit_tiny").eval()
    assert [(f.name, f.channels, f.stride) for f in model.feature_info] == [("c4", 192, 16)]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        tokens = model.forward_features(x)
        fmap = model.forward_stages(x)["c4"]
    assert tokens.shape == (1, 1 + 14 * 14, 192) and fmap.shape == (1, 192, 14, 14)
    # Token k (after the class token) is patch (k // 14, k % 14).
    assert torch.equal(fmap[0, :, 2, 5], tokens[0, 1 + 2 * 14 + 5])


@pytest.mark.parametrize(("size", "kwargs"), [(32, {}), (28, {"image_size": 28})])
def test_vit_tiny_small_input_trains(size, kwargs, check_grads):
    model = create("vit_tiny", num_classes=10, in_channels=1, small_input=True, **kwargs)
    assert model.patch_size == 4 and model.pos_embed.shape == (1, 1 + (size // 4) ** 2, 192)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.02)  # the zero-initialised head would get no input grads
    check_grads(model, torch.randn(2, 1, size, size), 10, nonzero=True)


def test_errors_are_clear():
    model = create("vit_tiny", small_input=True)
    with pytest.raises(ValueError, match="divisible by the patch size 4"):
        model(torch.randn(1, 3, 30, 30))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        create("vit_tiny", image_size=100)
    with pytest.raises(TypeError, match="hidden_size"):
        create("vit_tiny", hidden_size=10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_b_32", "vit_l_16", "vit_l_32"])
def test_other_macs_match_torchvision_gflops(name):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    summary = summarize(create(name), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02
