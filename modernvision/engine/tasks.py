"""Task wrappers that turn a plain network into a model returning a loss dict, and the three
transfer-learning modes (freeze the backbone, train the head only, fine-tune all with a lower
backbone learning rate)."""

from __future__ import annotations

from collections.abc import Iterator

import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.models.classification._base import AuxOutput

TRANSFER_MODES = ("full", "finetune", "freeze")


def classifier_head(model: nn.Module) -> nn.Module:
    """The classification head of ``model``: ``get_classifier()`` if it has one, else the first
    of the attributes ``fc``, ``classifier``, ``head``, ``heads``."""
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    for name in ("fc", "classifier", "head", "heads"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    raise ValueError(f"cannot find the classification head of {type(model).__name__}: expected "
                     "a get_classifier() method or an attribute fc/classifier/head/heads")


def _head_modules(model: nn.Module) -> list[nn.Module]:
    heads = [classifier_head(model)]
    for name in ("aux1", "aux2", "AuxLogits", "aux_heads"):  # auxiliary classifiers are heads too
        m = getattr(model, name, None)
        if isinstance(m, nn.Module):
            heads.append(m)
    return heads


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(backbone_params, head_params)`` of a classifier."""
    head_ids = {id(p) for h in _head_modules(model) for p in h.parameters()}
    head = [p for p in model.parameters() if id(p) in head_ids]
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    return backbone, head


class ClassificationTask(nn.Module):
    """Cross-entropy training of a classifier; accuracy and a confusion matrix in evaluation.

    Training: ``forward(images, targets) -> {"loss_cls": ..., ["loss_aux": ...]}``; nets with
    auxiliary classifiers (an :class:`AuxOutput`) add ``aux_weight * sum(CE(aux))``.
    Inference: ``forward(images) -> logits``, scored by
    :class:`~modernvision.engine.evaluation.ClassificationEvaluator`.

    Args:
        model: the network.
        num_classes: number of classes (for the confusion matrix).
        label_smoothing: passed to cross-entropy.
        transfer: ``"full"`` (train everything), ``"freeze"`` (backbone frozen — its weights and
            its batch-norm statistics — only the head trains) or ``"finetune"`` (all train; use
            :meth:`param_groups` for a lower backbone learning rate).
    """

    def __init__(self, model: nn.Module, num_classes: int, *, label_smoothing: float = 0.0,
                 transfer: str = "full") -> None:
        super().__init__()
        if transfer not in TRANSFER_MODES:
            raise ValueError(f"transfer must be one of {TRANSFER_MODES}, got {transfer!r}")
        self.model = model
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.transfer = transfer
        self._frozen: list[nn.Module] = []
        if transfer == "freeze":
            head_ids = {id(m) for h in _head_modules(model) for m in h.modules()}
            backbone, _ = split_parameters(model)
            for p in backbone:
                p.requires_grad_(False)
            self._frozen = [m for m in model.modules()
                            if id(m) not in head_ids and not any(True for _ in m.children())]

    def train(self, mode: bool = True) -> ClassificationTask:
        super().train(mode)
        for m in self._frozen:  # frozen layers keep their running statistics
            m.eval()
        return self

    def param_groups(self, lr: float, *, backbone_lr_mult: float = 0.1) -> list[dict]:
        """Param groups: the head at ``lr``, the backbone at ``lr * backbone_lr_mult``
        (frozen parameters are left out)."""
        backbone, head = split_parameters(self.model)
        groups = [{"params": [p for p in head if p.requires_grad], "lr": lr, "name": "head"}]
        trainable = [p for p in backbone if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": lr * backbone_lr_mult, "name": "backbone"})
        return groups

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def forward(self, images: Tensor, targets: Tensor | None = None):
        out = self.model(images)
        if targets is None:
            return out.logits if isinstance(out, AuxOutput) else out
        if isinstance(out, AuxOutput):
            losses = {"loss_cls": F.cross_entropy(out.logits.float(), targets,
                                                  label_smoothing=self.label_smoothing)}
            if out.aux_logits:
                aux = sum(F.cross_entropy(a.float(), targets, label_smoothing=self.label_smoothing)
                          for a in out.aux_logits)
                losses["loss_aux"] = out.aux_weight * aux
            return losses
        return {"loss_cls": F.cross_entropy(out.float(), targets,
                                            label_smoothing=self.label_smoothing)}
