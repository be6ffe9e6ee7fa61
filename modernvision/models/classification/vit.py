"""Vision Transformer (ViT): a Transformer encoder over image patches.

Paper: Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer,
Heigold, Gelly, Uszkoreit, Houlsby, "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", 2020, arXiv:2010.11929.

Sec. 3.1, eqs. 1-4: the image is cut into ``P x P`` patches, each linearly projected to ``D``
(one ``P x P`` stride-``P`` convolution); a learnable class token is prepended and learnable 1-D
position embeddings are added; ``L`` pre-norm encoder blocks follow
(``x = x + MSA(LN(x)); x = x + MLP(LN(x))``, MLP = Linear-GELU-Linear of width ``mlp_dim``);
the class token's final LayerNorm output feeds the head. Table 1: ViT-Base 12 layers, D 768,
MLP 3072, 12 heads; ViT-Large 24 / 1024 / 4096 / 16; "/16" and "/32" are the patch sizes.

Departures from the paper:
    * ``vit_tiny`` (D 192, 12 layers, 3 heads, MLP 768) is DeiT-Ti (Touvron et al., "Training
      data-efficient image transformers", 2020, arXiv:2012.12877), not a row of Table 1.
    * The head is one linear layer (the paper's fine-tuning head, and torchvision's); set
      ``representation_size`` for the pre-training head with a tanh hidden layer.
    * Inputs whose patch grid differs from ``image_size / patch_size`` are accepted: the
      position embeddings are resized by bicubic interpolation on the fly, the paper's recipe
      for fine-tuning at another resolution (Sec. 3.2), with the corner-aligned grid of
      torchvision's ``interpolate_embeddings``. Sides must be multiples of the patch size.
    * ``small_input=True`` means patch 4 on 32x32 images (an 8x8 grid of 64 tokens); pass
      ``image_size=28`` for 28x28 images (7x7 grid).
    * Initialisation as torchvision: truncated-normal patch projection (std ``sqrt(1/fan_in)``),
      N(0, 0.02) position embeddings, zero class token, Xavier-uniform QKV and MLP weights,
      zero head.
    * Attention is :class:`~modernvision.layers.MultiheadAttention` (written out, eq. 1 of
      arXiv:1706.03762); without attention weights it runs through
      ``F.scaled_dot_product_attention`` (fused kernels where available).
    * Module names are ours; :func:`convert_torchvision_vit` maps torchvision's state dict.

Stages (``feature_info``): a single-scale map -- the final LayerNorm's patch tokens reshaped to
``(B, D, H/P, W/P)`` -- named ``c<log2 P>`` (``c4`` for /16, ``c5`` for /32, ``c2`` for
``small_input``), with stride ``P``. (ViTDet-style necks build a pyramid from it.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers.attention import MultiHeadSelfAttention
from modernvision.models.classification._base import Classifier, FeatureInfo
from modernvision.models.classification._family import (
    apply_overrides,
    check_images,
    check_num_classes,
    linear_head,
)
from modernvision.models.registry import StateDict, register_model

__all__ = [
    "EncoderBlock",
    "Mlp",
    "ViTConfig",
    "VisionTransformer",
    "convert_torchvision_vit",
    "vit_b_16",
    "vit_b_32",
    "vit_l_16",
    "vit_l_32",
    "vit_tiny",
]


@dataclass(frozen=True)
class ViTConfig:
    """One row of Table 1 plus the patch and image size.

    Attributes:
        patch_size: side ``P`` of the square patches.
        num_layers: encoder blocks ``L``.
        num_heads: attention heads.
        hidden_dim: token width ``D``.
        mlp_dim: hidden width of each block's MLP.
        image_size: the side the position embeddings are laid out for.
        dropout: dropout after the embeddings, the attention output and in the MLPs.
        attention_dropout: dropout on the attention weights.
        representation_size: width of the pre-training head's tanh layer, or ``None``.
        layer_norm_eps: LayerNorm epsilon.
    """

    patch_size: int
    num_layers: int
    num_heads: int
    hidden_dim: int
    mlp_dim: int
    image_size: int = 224
    dropout: float = 0.0
    attention_dropout: float = 0.0
    representation_size: int | None = None
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"image_size ({self.image_size}) must be a multiple of patch_size "
                f"({self.patch_size})"
            )
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by num_heads ({self.num_heads})"
            )


VIT_B_16 = ViTConfig(16, 12, 12, 768, 3072)
VIT_B_32 = ViTConfig(32, 12, 12, 768, 3072)
VIT_L_16 = ViTConfig(16, 24, 16, 1024, 4096)
VIT_L_32 = ViTConfig(32, 24, 16, 1024, 4096)
VIT_TINY = ViTConfig(16, 12, 3, 192, 768)


class Mlp(nn.Module):
    """The encoder's MLP: ``Linear(D, mlp_dim) -> GELU -> dropout -> Linear -> dropout``."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block, eqs. 2-3: ``x + MSA(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadSelfAttention(
            dim, num_heads, attention_dropout=attention_dropout, proj_dropout=dropout
        )
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(Classifier):
    """ViT built from a :class:`ViTConfig`.

    Args:
        config: the architecture.
        num_classes: size of the classifier output; 0: headless (no ``pre_logits``, no
            ``head``), ``forward`` returns the class token's final-norm features ``(B, D)``.
        in_channels: image channels.
        small_input: patch 4 on 32x32 images (override ``image_size`` for 28x28).
        **overrides: fields of ``config`` to replace (e.g. ``image_size=384``).
    """

    def __init__(
        self,
        config: ViTConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        **overrides,
    ) -> None:
        super().__init__()
        if small_input:
            overrides = {"patch_size": 4, "image_size": 32, **overrides}
        config = apply_overrides(config, overrides, model=type(self).__name__)
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        d, p = config.hidden_dim, config.patch_size
        self.patch_size = p
        self.grid = config.image_size // p
        self.num_features = d

        self.patch_embed = nn.Conv2d(in_channels, d, p, p)  # eq. 1: x_p E for every patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + self.grid**2, d).normal_(std=0.02))
        self.pos_drop = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(
            *(
                EncoderBlock(
                    d,
                    config.num_heads,
                    config.mlp_dim,
                    dropout=config.dropout,
                    attention_dropout=config.attention_dropout,
                    eps=config.layer_norm_eps,
                )
                for _ in range(config.num_layers)
            )
        )
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        check_num_classes(num_classes)
        if config.representation_size is not None and num_classes:
            self.pre_logits: nn.Module = nn.Sequential(
                nn.Linear(d, config.representation_size), nn.Tanh()
            )
            head_in = config.representation_size
        else:
            self.pre_logits = nn.Identity()
            head_in = d
        self.head = linear_head(head_in, num_classes)
        level = math.log2(p)
        name = f"c{int(level)}" if level.is_integer() else f"p{p}"
        self.feature_info = [FeatureInfo(name, d, p)]
        self._init_weights()

    def _init_weights(self) -> None:
        fan_in = self.patch_embed.in_channels * self.patch_size**2
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.patch_embed.bias)
        for block in self.blocks:
            nn.init.xavier_uniform_(block.attn.in_proj_weight)
            nn.init.zeros_(block.attn.in_proj_bias)
            nn.init.zeros_(block.attn.out_proj.bias)
            for fc in (block.mlp.fc1, block.mlp.fc2):
                nn.init.xavier_uniform_(fc.weight)
                nn.init.normal_(fc.bias, std=1e-6)
        if isinstance(self.pre_logits, nn.Sequential):
            lin = self.pre_logits[0]
            nn.init.trunc_normal_(lin.weight, std=math.sqrt(1 / lin.in_features))
            nn.init.zeros_(lin.bias)
        if isinstance(self.head, nn.Linear):
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _position_embedding(self, grid_h: int, grid_w: int) -> Tensor:
        """Position embeddings for a ``grid_h x grid_w`` patch grid (Sec. 3.2 interpolation)."""
        if grid_h == self.grid and grid_w == self.grid:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        d = patch_pos.shape[-1]
        # (1, g*g, D) -> (1, D, g, g) -> resize -> (1, gh*gw, D)
        patch_pos = patch_pos.reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(
            patch_pos, size=(grid_h, grid_w), mode="bicubic", align_corners=True
        )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, d)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def _tokens(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Images -> the final LayerNorm's tokens ``(B, 1 + h*w, D)`` and the grid ``h, w``."""
        check_images(x, self.in_channels, type(self).__name__)
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"{type(self).__name__} needs image sides divisible by the patch size "
                f"{self.patch_size}, got {h}x{w}"
            )
        x = self.patch_embed(x)  # (B, D, h, w)
        b, d, gh, gw = x.shape
        # (B, D, h, w) -> (B, h*w, D); a free view when x is channels_last.
        x = x.permute(0, 2, 3, 1).reshape(b, gh * gw, d)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = self.pos_drop(x + self._position_embedding(gh, gw))
        return self.norm(self.blocks(x)), gh, gw

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> final-norm tokens ``(B, 1 + HW/P^2, D)``, class first."""
        return self._tokens(x)[0]

    def forward_head(self, x: Tensor) -> Tensor:
        """Tokens -> logits from the class token (eq. 4)."""
        return self.head(self.pre_logits(x[:, 0]))

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        tokens, gh, gw = self._tokens(x)
        b, _, d = tokens.shape
        # (B, h*w, D) -> (B, D, h, w)
        fmap = tokens[:, 1:].reshape(b, gh, gw, d).permute(0, 3, 1, 2)
        return {self.feature_info[0].name: fmap}


def convert_torchvision_vit(state_dict: StateDict) -> StateDict:
    """Rename a torchvision ``vit_*`` state dict to :class:`VisionTransformer`'s names.

    The attention is :class:`~modernvision.layers.MultiheadAttention`, which has
    ``nn.MultiheadAttention``'s keys (``in_proj_weight``, ``in_proj_bias``, ``out_proj``), so
    ``self_attention.*`` is only renamed ``attn.*``.
    """
    fixed = {
        "conv_proj.weight": "patch_embed.weight",
        "conv_proj.bias": "patch_embed.bias",
        "class_token": "cls_token",
        "encoder.pos_embedding": "pos_embed",
        "encoder.ln.weight": "norm.weight",
        "encoder.ln.bias": "norm.bias",
        "heads.head.weight": "head.weight",
        "heads.head.bias": "head.bias",
        "heads.pre_logits.weight": "pre_logits.0.weight",
        "heads.pre_logits.bias": "pre_logits.0.bias",
    }
    block_parts = {
        "ln_1": "norm1",
        "ln_2": "norm2",
        "self_attention": "attn",
        "mlp.0": "mlp.fc1",
        "mlp.3": "mlp.fc2",
        "mlp.linear_1": "mlp.fc1",  # torchvision's pre-0.13 names
        "mlp.linear_2": "mlp.fc2",
    }
    out: StateDict = {}
    for key, value in state_dict.items():
        if key in fixed:
            out[fixed[key]] = value
            continue
        m = re.fullmatch(r"encoder\.layers\.encoder_layer_(\d+)\.(.+)", key)
        if m is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision ViT state dict")
        rest = m[2]
        for old, new in block_parts.items():
            if rest == old or rest.startswith(old + "."):
                out[f"blocks.{m[1]}.{new}{rest[len(old) :]}"] = value
                break
        else:
            raise KeyError(f"unexpected key {key!r} in a torchvision ViT state dict")
    return out


@register_model(torchvision="vit_b_16", converter=convert_torchvision_vit)
def vit_b_16(*, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-B/16 (Table 1): 86.6 M parameters at 224 px."""
    return VisionTransformer(VIT_B_16, num_classes=num_classes, **kwargs)


@register_model(torchvision="vit_b_32", converter=convert_torchvision_vit)
def vit_b_32(*, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-B/32 (Table 1): 88.2 M parameters at 224 px."""
    return VisionTransformer(VIT_B_32, num_classes=num_classes, **kwargs)


@register_model(torchvision="vit_l_16", converter=convert_torchvision_vit)
def vit_l_16(*, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-L/16 (Table 1): 304.3 M parameters at 224 px."""
    return VisionTransformer(VIT_L_16, num_classes=num_classes, **kwargs)


@register_model(torchvision="vit_l_32", converter=convert_torchvision_vit)
def vit_l_32(*, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-L/32 (Table 1): 306.5 M parameters at 224 px."""
    return VisionTransformer(VIT_L_32, num_classes=num_classes, **kwargs)


@register_model
def vit_tiny(*, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-Ti/16 (DeiT-Ti sizes): 5.7 M parameters at 224 px; ``small_input`` for 32 px."""
    return VisionTransformer(VIT_TINY, num_classes=num_classes, **kwargs)
