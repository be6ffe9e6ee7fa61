"""Training throughput of our classifiers against torchvision's same models, in one run.

For each model: build ours and torchvision's (``weights=None``), copy torchvision's weights into
ours through ``convert_torchvision_state_dict`` and check the eval-mode logits agree (fp32,
TF32 off), then time training steps -- forward, cross-entropy, backward, SGD with momentum --
under ``torch.autocast(bfloat16)`` with channels-last inputs and weights. The two
implementations are timed interleaved (alternating which goes first), each repeat after a few
warm-up steps, with ``torch.cuda.synchronize()`` around the timed steps; the reported img/s is
the median over repeats and the ratio is ours / torchvision's.

Usage:
    python bench/gpu_classification.py --device cuda --out bench/gpu_classification.json
    python bench/gpu_classification.py --device cpu --batch-size 2 --steps 2 --image-size 64 \
        --out /tmp/smoke.json                                  # smoke test

``--compile`` applies ``torch.compile`` to both implementations identically.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from modernvision.models import convert_torchvision_state_dict, create, get_entry

DEFAULT_MODELS = "resnet50,vit_b_16,mobilenet_v2,efficientnet_b0"


def _logits(out) -> Tensor:
    if isinstance(out, Tensor):
        return out
    return out.logits if hasattr(out, "logits") else out[0]


def _randomize(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BN statistics and classifier weights (ViT's head starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.25 + 0.5 * torch.rand(n, generator=g))
            elif isinstance(m, nn.Linear) and not m.weight.abs().sum():
                m.weight.copy_(0.02 * torch.randn(m.weight.shape, generator=g))


def _build_pair(name: str, image_size: int) -> tuple[nn.Module, nn.Module]:
    entry = get_entry(name)
    if entry.torchvision is None:
        raise ValueError(f"model {name!r} has no torchvision counterpart to compare with")
    kwargs = {"image_size": image_size} if name.startswith("vit_") else {}
    torch.manual_seed(0)
    ref = getattr(torchvision.models, entry.torchvision)(**kwargs)
    _randomize(ref)
    ours = create(name, **kwargs)
    ours.load_state_dict(convert_torchvision_state_dict(name, ref.state_dict()))
    return ours, ref


def _max_logit_diff(ours: nn.Module, ref: nn.Module, x: Tensor) -> float:
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ours.eval(), ref.eval()
        with torch.no_grad():
            return (_logits(ours(x)) - _logits(ref(x))).abs().max().item()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


class _Trainer:
    """One model with its optimizer; ``run(n)`` does n training steps."""

    def __init__(self, model: nn.Module, device: torch.device, compile_model: bool) -> None:
        self.model = model.to(device, memory_format=torch.channels_last).train()
        self.step_model = torch.compile(self.model) if compile_model else self.model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.device_type = device.type

    def run(self, x: Tensor, y: Tensor, steps: int) -> None:
        for _ in range(steps):
            with torch.autocast(self.device_type, dtype=torch.bfloat16):
                loss = F.cross_entropy(_logits(self.step_model(x)), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    ours, ref = _build_pair(name, args.image_size)
    params = sum(p.numel() for p in ours.parameters())
    check_x = torch.randn(2, 3, args.image_size, args.image_size, device=device)
    ours.to(device), ref.to(device)
    diff = _max_logit_diff(ours, ref, check_x)

    b, s = args.batch_size, args.image_size
    x = torch.randn(b, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (b,), device=device)
    trainers = {
        "ours": _Trainer(ours, device, args.compile),
        "torchvision": _Trainer(ref, device, args.compile),
    }
    for t in trainers.values():  # first warm-up: kernels selected, compiled, caches filled
        t.run(x, y, args.warmup)
    _sync(device)
    runs: dict[str, list[float]] = {k: [] for k in trainers}
    for r in range(args.repeats):
        order = list(trainers) if r % 2 == 0 else list(reversed(trainers))
        for key in order:
            trainers[key].run(x, y, 1)  # re-warm caches after the other model ran
            _sync(device)
            t0 = time.perf_counter()
            trainers[key].run(x, y, args.steps)
            _sync(device)
            runs[key].append(b * args.steps / (time.perf_counter() - t0))
    ours_ips = statistics.median(runs["ours"])
    tv_ips = statistics.median(runs["torchvision"])
    result = {
        "params": params,
        "max_abs_logit_diff_fp32": diff,
        "ours_img_per_s": ours_ips,
        "torchvision_img_per_s": tv_ips,
        "ratio": ours_ips / tv_ips,
        "ours_runs": runs["ours"],
        "torchvision_runs": runs["torchvision"],
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del trainers, ours, ref, x, y
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30, help="timed training steps per repeat")
    p.add_argument(
        "--warmup", type=int, default=None, help="warm-up steps first (default min(10, steps))"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="torch.compile both implementations")
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(10, max(2, args.steps))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda given but no CUDA device is available")
    torch.backends.cudnn.benchmark = True

    report = {
        "what": "training img/s (fwd+bwd+SGD), autocast bf16, channels_last; median of repeats",
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": sys.version.split()[0],
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "compile": args.compile,
        "models": {},
    }
    t0 = time.perf_counter()
    print(
        f"device: {report['device']}  batch {args.batch_size}  {args.image_size}px  bf16  "
        f"channels_last  compile={args.compile}"
    )
    print(f"{'model':<18} {'ours img/s':>11} {'tv img/s':>11} {'ratio':>6} {'logit diff':>11}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        r = bench_model(name, args, device)
        report["models"][name] = r
        print(
            f"{name:<18} {r['ours_img_per_s']:>11.1f} {r['torchvision_img_per_s']:>11.1f} "
            f"{r['ratio']:>6.3f} {r['max_abs_logit_diff_fp32']:>11.2e}",
            flush=True,
        )
    report["wall_s"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
