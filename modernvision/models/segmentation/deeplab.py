"""DeepLab v2 and v3: dilated ResNets with atrous spatial pyramid pooling.

Papers:
    * v2: Chen, Papandreou, Kokkinos, Murphy & Yuille, "DeepLab: Semantic Image Segmentation
      with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", 2016,
      arXiv:1606.00915. The last two strides of the ResNet become dilations (rates 2 and 4),
      so the scores come at output stride 8 (Sec. 3.1); ASPP-L (rates 6, 12, 18, 24), each
      branch a 3x3 atrous convolution to the classes, branch scores **summed** (Sec. 3.3);
      bilinear upsampling to the image.
    * v3: Chen, Papandreou, Schroff & Adam, "Rethinking Atrous Convolution for Semantic Image
      Segmentation", 2017, arXiv:1706.05587, Sec. 3.3: ASPP of a 1x1 and three 3x3 atrous
      convolutions (rates 6, 12, 18 at output stride 16, doubled at 8) plus image-level
      pooling, 256 channels with batch norm, **concatenated** and fused by a 1x1 (256, BN),
      then a 1x1 to the classes; logits upsampled to the image, where the loss is taken.
      Rate 24 was dropped: at rates close to the map's size most of a 3x3's taps fall on the
      padding (:func:`modernvision.layers.padding_tap_fraction`).

Both are the same model here, :class:`DeepLab`, with a head passed in (compose by parts).

Departures:
    * The ResNets put the stride on the 3x3 (v1.5, torchvision's) where the released v2
      ResNet-101 has it on the 1x1; ``deeplabv2_resnet18`` / ``deeplabv3_resnet18`` are
      CPU-sized and not in the papers (ResNet-18's basic blocks accept dilation here).
    * v2's multi-scale inputs (MSC) and the dense CRF, and v3's multi-grid and multi-scale /
      flipped inference are not built; no ImageNet / COCO pre-training offline.
    * ``deeplabv3_resnet50`` is torchvision's: output stride 8 with rates 12, 24, 36, an extra
      3x3 conv (256, BN, ReLU) after ASPP, dropout 0.5 in the fusing 1x1, names as
      torchvision's so :func:`convert_torchvision_segmentation` is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.aspp import ASPP, SummedASPP
from modernvision.layers.upsample import upsample_bilinear
from modernvision.models.backbone import create_backbone
from modernvision.models.registry import register_model
from modernvision.models.segmentation._base import Segmenter
from modernvision.models.segmentation.fcn import FCNHead, convert_torchvision_segmentation

__all__ = ["DeepLab", "deeplab_v2_head", "deeplab_v3_head", "deeplabv2_resnet18",
           "deeplabv2_resnet101", "deeplabv3_resnet18", "deeplabv3_resnet50"]

_DILATE = {8: (False, True, True), 16: (False, False, True), 32: (False, False, False)}


def dilated_resnet(name: str, output_stride: int, **kwargs):
    """A registry ResNet as a backbone returning ``c4`` and ``c5`` at ``output_stride``."""
    if output_stride not in _DILATE:
        raise InvalidArgumentError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    return create_backbone(name, out_features=("c4", "c5"),
                           replace_stride_with_dilation=_DILATE[output_stride], **kwargs)


def deeplab_v2_head(in_channels: int, num_classes: int,
                    rates: Sequence[int] = (6, 12, 18, 24)) -> nn.Module:
    """v2's ASPP-L: summed 3x3 atrous class scores."""
    return SummedASPP(in_channels, num_classes, rates)


def deeplab_v3_head(in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18), *,
                    torchvision_style: bool = False) -> nn.Sequential:
    """v3's ASPP then a 1x1 to the classes; ``torchvision_style`` adds torchvision's 3x3
    (256, BN, ReLU) between them and dropout 0.5 in the fusing 1x1."""
    if torchvision_style:
        return nn.Sequential(ASPP(in_channels, rates, dropout=0.5),
                             nn.Conv2d(256, 256, 3, padding=1, bias=False),
                             nn.BatchNorm2d(256), nn.ReLU(inplace=True),
                             nn.Conv2d(256, num_classes, 1))
    return nn.Sequential(ASPP(in_channels, rates), nn.Conv2d(256, num_classes, 1))


class DeepLab(Segmenter):
    """A dilated backbone, a head on its last map, bilinear upsampling to the input.

    Children ``backbone``, ``classifier`` and (``aux_classifier``: torchvision's FCN head on
    ``c4``) as torchvision's ``DeepLabV3``.

    Args:
        backbone: returns ``c4`` and ``c5`` (see :func:`dilated_resnet`).
        classifier: ``c5`` -> class scores (:func:`deeplab_v2_head`, :func:`deeplab_v3_head`).
        num_classes: classes the head scores.
        aux_classifier: an auxiliary head on ``c4`` (training only), or None.
        output_stride: the backbone's stride, recorded for ``extra_repr``.
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module, *, num_classes: int,
                 aux_classifier: nn.Module | None = None, output_stride: int = 8,
                 ignore_index: int = 255) -> None:
        super().__init__(num_classes, ignore_index=ignore_index)
        self.backbone, self.classifier = backbone, classifier
        self.aux_classifier = aux_classifier
        self.output_stride = output_stride

    def forward_train_logits(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.backbone(x)
        size = tuple(x.shape[-2:])
        out = {"out": upsample_bilinear(self.classifier(feats["c5"]), size)}
        if self.aux_classifier is not None:
            out["aux"] = upsample_bilinear(self.aux_classifier(feats["c4"]), size)
        return out

    def forward_logits(self, x: Tensor) -> Tensor:
        feats = self.backbone(x)
        return upsample_bilinear(self.classifier(feats["c5"]), tuple(x.shape[-2:]))

    def extra_repr(self) -> str:
        return f"output_stride={self.output_stride}"


def _v3_rates(output_stride: int) -> tuple[int, ...]:
    return tuple(r * 16 // output_stride for r in (6, 12, 18))


def _v2(backbone: str, num_classes: int, output_stride: int, ignore_index: int,
        **kwargs) -> DeepLab:
    if kwargs:
        raise TypeError(f"deeplabv2 got unexpected keyword argument(s) {sorted(kwargs)}; it "
                        "accepts num_classes, output_stride, ignore_index")
    body = dilated_resnet(backbone, output_stride)
    return DeepLab(body, deeplab_v2_head(body.out_channels["c5"], num_classes),
                   num_classes=num_classes, output_stride=output_stride,
                   ignore_index=ignore_index)


def _v3(backbone: str, num_classes: int, output_stride: int, ignore_index: int,
        **kwargs) -> DeepLab:
    if kwargs:
        raise TypeError(f"deeplabv3 got unexpected keyword argument(s) {sorted(kwargs)}; it "
                        "accepts num_classes, output_stride, ignore_index")
    body = dilated_resnet(backbone, output_stride)
    head = deeplab_v3_head(body.out_channels["c5"], num_classes, _v3_rates(output_stride))
    return DeepLab(body, head, num_classes=num_classes, output_stride=output_stride,
                   ignore_index=ignore_index)


@register_model(task="semantic")
def deeplabv2_resnet101(*, num_classes: int = 21, output_stride: int = 8,
                        ignore_index: int = 255, **kwargs) -> DeepLab:
    """DeepLab v2 (ResNet-101, output stride 8, ASPP-L summed)."""
    return _v2("resnet101", num_classes, output_stride, ignore_index, **kwargs)


@register_model(task="semantic")
def deeplabv2_resnet18(*, num_classes: int = 21, output_stride: int = 8,
                       ignore_index: int = 255, **kwargs) -> DeepLab:
    """DeepLab v2 on a dilated ResNet-18 (CPU-sized)."""
    return _v2("resnet18", num_classes, output_stride, ignore_index, **kwargs)


@register_model(task="semantic")
def deeplabv3_resnet18(*, num_classes: int = 21, output_stride: int = 16,
                       ignore_index: int = 255, **kwargs) -> DeepLab:
    """DeepLab v3 as in the paper's head, on a dilated ResNet-18 (CPU-sized); rates 6/12/18
    at output stride 16, 12/24/36 at 8."""
    return _v3("resnet18", num_classes, output_stride, ignore_index, **kwargs)


@register_model(task="semantic", torchvision="deeplabv3_resnet50",
                converter=convert_torchvision_segmentation)
def deeplabv3_resnet50(*, num_classes: int = 21, aux_loss: bool | None = None,
                       ignore_index: int = 255) -> DeepLab:
    """torchvision's DeepLabV3-ResNet50 (output stride 8, rates 12/24/36)."""
    body = dilated_resnet("resnet50", 8)
    head = deeplab_v3_head(2048, num_classes, (12, 24, 36), torchvision_style=True)
    aux = FCNHead(1024, num_classes) if aux_loss else None
    return DeepLab(body, head, num_classes=num_classes, aux_classifier=aux, output_stride=8,
                   ignore_index=ignore_index)


for _b in (deeplabv2_resnet101, deeplabv2_resnet18, deeplabv3_resnet18, deeplabv3_resnet50):
    _b.default_image_size = 512
