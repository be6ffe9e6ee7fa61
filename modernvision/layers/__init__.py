"""Reusable blocks: hand-written norms, dropout and pooling; conv-norm-act and factorised convs;
LRN, Inception modules, residual blocks, squeeze-excitation, stochastic depth; one-hot and
embeddings, RNN / LSTM / GRU, multi-head attention, positional encodings; upsampling, transposed
and dilated convolution (segmentation)."""

from modernvision.layers.attention import (
    MultiheadAttention,
    MultiHeadSelfAttention,
    causal_mask,
    scaled_dot_product_attention,
)
from modernvision.layers.conv import ConvNormAct, Factorized5x5, FactorizedNxN
from modernvision.layers.conv_transpose import (
    ConvTranspose2d,
    bilinear_kernel,
    conv_transpose2d,
    overlap_counts,
)
from modernvision.layers.dilated import (
    DilatedConv2d,
    dilate_kernel,
    dilated_conv2d,
    padding_tap_fraction,
)
from modernvision.layers.drop_path import DropPath, drop_path
from modernvision.layers.dropout import Dropout, dropout
from modernvision.layers.embedding import Embedding, one_hot
from modernvision.layers.inception import InceptionModule, NaiveInceptionModule
from modernvision.layers.lrn import LocalResponseNorm, local_response_norm
from modernvision.layers.norms import (
    BatchNorm1d,
    BatchNorm2d,
    FrozenBatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    freeze_batch_norm,
)
from modernvision.layers.pooling import (
    AvgPool2d,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    MaxPool2d,
    avg_pool2d,
    global_avg_pool2d,
    global_max_pool2d,
    max_pool2d,
)
from modernvision.layers.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_2d,
    sinusoidal_positional_encoding,
)
from modernvision.layers.residual import (
    BasicBlock,
    Bottleneck,
    InvertedResidual,
    ZeroPadShortcut,
    make_shortcut,
)
from modernvision.layers.rnn import GRU, LSTM, RNN
from modernvision.layers.squeeze_excite import SqueezeExcite
from modernvision.layers.upsample import (
    Upsample,
    resize_labels,
    upsample_bilinear,
    upsample_nearest,
)

__all__ = [
    "ConvTranspose2d",
    "DilatedConv2d",
    "Upsample",
    "bilinear_kernel",
    "conv_transpose2d",
    "dilate_kernel",
    "dilated_conv2d",
    "overlap_counts",
    "padding_tap_fraction",
    "resize_labels",
    "upsample_bilinear",
    "upsample_nearest",
    "GRU",
    "LSTM",
    "RNN",
    "Embedding",
    "LearnedPositionalEncoding",
    "MultiheadAttention",
    "SinusoidalPositionalEncoding",
    "causal_mask",
    "one_hot",
    "scaled_dot_product_attention",
    "sinusoidal_2d",
    "sinusoidal_positional_encoding",
    "BasicBlock",
    "Bottleneck",
    "DropPath",
    "InceptionModule",
    "InvertedResidual",
    "LocalResponseNorm",
    "MultiHeadSelfAttention",
    "NaiveInceptionModule",
    "SqueezeExcite",
    "ZeroPadShortcut",
    "drop_path",
    "local_response_norm",
    "make_shortcut",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ConvNormAct",
    "Dropout",
    "Factorized5x5",
    "FrozenBatchNorm2d",
    "FactorizedNxN",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "MaxPool2d",
    "avg_pool2d",
    "dropout",
    "freeze_batch_norm",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
]
