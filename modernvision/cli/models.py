"""``modernvision models`` and ``modernvision summary``."""

from __future__ import annotations

import argparse

from modernvision.cli._types import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models with params and MACs")
    p.add_argument("--task", help="only models of this task, e.g. classification, detection "
                                  "(default: all)")
    p.add_argument("--macs", action="store_true",
                   help="also count MACs at each model's default input size (slower)")
    p.add_argument("--compound-scaling", action="store_true",
                   help="print EfficientNet's compound-scaling table (formula vs released B0-B7)")
    p.set_defaults(func=_models)

    p = sub.add_parser("summary", help="per-layer params, MACs, activations, receptive field")
    p.add_argument("model", help="registered model name")
    p.add_argument("--input", default=None, help="C x H x W, e.g. 3x224x224 (default: the "
                                                 "model's own size)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="classifier outputs (default: the builder's, 1000 for the zoo)")
    p.set_defaults(func=_summary)


def default_input(name: str) -> str:
    from modernvision.models import get_entry

    if name == "compact_cnn":
        return "1x28x28"
    if name == "inception_v3":
        return "3x299x299"
    entry = get_entry(name)
    size = getattr(entry.builder, "default_image_size", 224)
    return f"3x{size}x{size}"


def _models(args: argparse.Namespace) -> int:
    import torch

    from modernvision.analysis import summarize
    from modernvision.models import create, get_entry, list_models

    if args.compound_scaling:
        from modernvision.models.classification.efficientnet import (
            format_compound_scaling_table,
        )

        print(format_compound_scaling_table())
        return 0
    names = list_models(args.task)
    width = max([22, *map(len, names)])
    header = f"{'model':<{width}} {'params':>14}  {'torchvision counterpart':<24}"
    if args.macs:
        header += f" {'input':>11} {'GMACs':>8}"
    print(header)
    for name in names:
        with torch.device("meta") if not args.macs else torch.device("cpu"):
            model = create(name)
        params = sum(p.numel() for p in model.parameters())
        line = f"{name:<{width}} {params:>14,}  {get_entry(name).torchvision or '-':<24}"
        if args.macs:
            size = default_input(name)
            line += f" {size:>11} {summarize(model, size).total_macs / 1e9:>8.3f}"
        print(line)
    return 0


def _summary(args: argparse.Namespace) -> int:
    from modernvision._errors import InvalidArgumentError
    from modernvision.analysis import summarize
    from modernvision.models import create

    size = args.input or default_input(args.model)
    kwargs = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = create(args.model, **kwargs)
    try:
        summary = summarize(model, size)
    except InvalidArgumentError as exc:  # name the flag the user typed
        raise InvalidArgumentError(str(exc).replace("input_size", "--input", 1)) from None
    print(summary)
    return 0
