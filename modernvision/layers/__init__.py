"""Reusable blocks: hand-written norms, dropout and pooling; conv-norm-act and factorised convs."""

from modernvision.layers.conv import ConvNormAct, Factorized5x5, FactorizedNxN
from modernvision.layers.dropout import Dropout, dropout
from modernvision.layers.norms import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
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

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ConvNormAct",
    "Dropout",
    "Factorized5x5",
    "FactorizedNxN",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "MaxPool2d",
    "avg_pool2d",
    "dropout",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
]
