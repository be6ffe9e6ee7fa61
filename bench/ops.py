"""Benchmark modernvision's NMS and RoIAlign against torchvision.ops, in one run, and check them.

    python bench/ops.py --device cpu --out bench/ops_cpu.json
    python bench/ops.py --device cuda --out results.json

What runs (same process, ours and torchvision's calls interleaved, median of repeats, warm-up
calls first -- the first call's time, which includes numba/Triton compilation, is reported
apart):

* NMS on 10,000 boxes, IoU threshold 0.5, float32, three box sets (timings depend on how much the
  boxes overlap, so all three are reported):
  ``torchvision-test`` torchvision's own NMS test recipe (corners and sizes uniform in
  [0, 100), dense overlap, ~20% kept); ``detections`` 250 objects in a 1024 x 1024 image, each
  with 40 jittered candidate boxes as a detector head emits them (the realistic case);
  ``sparse`` small boxes spread over 1000 x 1000 (most kept, the O(N^2) worst case of the
  greedy loop).
* RoIAlign forward, 1,000 RoIs, 7 x 7 output, 256 channels, on a (2, 256, 100, 152) float32
  feature map (stride 8 of an 800 x 1216 image, spatial_scale 1/8), boxes 16-256 px;
  ``sampling_ratio=2, aligned=True`` (Detectron2/Mask R-CNN) and ``sampling_ratio=-1,
  aligned=False`` (torchvision's default). On CUDA the forward+backward time is reported too
  (Triton kernels for both passes), and the JSON records the tile shapes the kernels chose.

Checks (printed as PASS/FAIL and stored in the JSON): NMS kept indices identical to torchvision
on the same device (on CUDA, where torchvision's CUDA kernel may differ from its CPU kernel by an
FMA-rounded IoU at the threshold, identical to either is a PASS and both comparisons are shown);
RoIAlign max |difference| from torchvision on the same device <= 1e-5, or, on a GPU, no larger
than the difference between torchvision's own CUDA and CPU kernels + 1e-6 (nvcc contracts
multiply-adds into FMAs, which moves sample positions by an ulp; both differences are printed),
and on CUDA the input gradient within 1e-4 of torchvision's.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torchvision

from modernvision import ops

NMS_THRESHOLD = 0.5
ROI_ALIGN_TOLERANCE = 1e-5


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pair(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    device: torch.device,
    repeats: int,
    warmup: int = 2,
) -> dict:
    """Median seconds of ``ours`` and ``theirs``, called alternately after warm-up."""
    first = {}
    for name, fn in (("ours", ours), ("torchvision", theirs)):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        first[name] = time.perf_counter() - start
        for _ in range(warmup - 1):
            fn()
    samples: dict[str, list[float]] = {"ours": [], "torchvision": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("torchvision", theirs)):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    result = {
        "median_ms": {k: 1000 * statistics.median(v) for k, v in samples.items()},
        "runs_ms": {k: [round(1000 * t, 4) for t in v] for k, v in samples.items()},
        "first_call_ms": {k: 1000 * v for k, v in first.items()},
    }
    result["ratio_ours_over_torchvision"] = (
        result["median_ms"]["ours"] / result["median_ms"]["torchvision"]
    )
    return result


def nms_boxes(kind: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if kind == "torchvision-test":
        boxes = torch.rand(n, 4, generator=g) * 100
        boxes[:, 2:] += boxes[:, :2]
    elif kind == "detections":
        objects = 250
        centre = torch.rand(objects, 2, generator=g) * 1024
        size = 16 + torch.rand(objects, 2, generator=g) * 200
        which = torch.randint(0, objects, (n,), generator=g)
        jitter = torch.randn(n, 4, generator=g) * 0.1
        c = centre[which] + jitter[:, :2] * size[which]
        s = size[which] * torch.exp(jitter[:, 2:])
        boxes = torch.cat([c - s / 2, c + s / 2], dim=1)
    elif kind == "sparse":
        xy = torch.rand(n, 2, generator=g) * 1000
        boxes = torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 20], dim=1)
    else:
        raise ValueError(kind)
    return boxes, torch.rand(n, generator=g)


def roi_inputs(device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(2, 256, 100, 152, generator=g)
    k = 1000
    size = 16 + torch.rand(k, 2, generator=g) * 240
    xy = torch.rand(k, 2, generator=g) * (torch.tensor([1216.0, 800.0]) - size)
    batch = torch.randint(0, 2, (k, 1), generator=g).float()
    rois = torch.cat([batch, xy, xy + size], dim=1)
    return features.to(device), rois.to(device)


def bench_nms(device: torch.device, repeats: int, report: dict) -> bool:
    ok_all = True
    for kind in ("torchvision-test", "detections", "sparse"):
        boxes, scores = nms_boxes(kind, 10_000)
        boxes, scores = boxes.to(device), scores.to(device)
        threshold = NMS_THRESHOLD
        result = time_pair(
            functools.partial(ops.nms, boxes, scores, threshold),
            functools.partial(torchvision.ops.nms, boxes, scores, threshold),
            device,
            repeats,
        )
        ours = ops.nms(boxes, scores, threshold).cpu()
        same_device = torchvision.ops.nms(boxes, scores, threshold).cpu()
        cpu = torchvision.ops.nms(boxes.cpu(), scores.cpu(), threshold)
        checks = {
            "kept": int(ours.numel()),
            f"identical_to_torchvision_{device.type}": bool(torch.equal(ours, same_device)),
            "identical_to_torchvision_cpu": bool(torch.equal(ours, cpu)),
        }
        if not checks[f"identical_to_torchvision_{device.type}"]:
            checks["differences_vs_same_device"] = int(
                len(set(ours.tolist()) ^ set(same_device.tolist()))
            )
        passed = (
            checks[f"identical_to_torchvision_{device.type}"]
            or checks["identical_to_torchvision_cpu"]
        )
        ok_all &= passed
        extra = {}
        if device.type == "cuda":
            from modernvision.ops._nms_triton import nms_sorted_triton

            def host_scan(b=boxes, s=scores, threshold=NMS_THRESHOLD):
                order = torch.sort(s, stable=True, dim=0, descending=True)[1]
                return order[
                    nms_sorted_triton(b[order].contiguous(), None, threshold, reduce="host")
                ]

            extra["ours_host_scan_vs_torchvision"] = time_pair(
                host_scan,
                functools.partial(torchvision.ops.nms, boxes, scores, threshold),
                device,
                repeats,
            )
        report["nms"][kind] = {
            "n": 10_000,
            "iou_threshold": threshold,
            **result,
            "checks": checks,
            "pass": passed,
            **extra,
        }
        same = f"same as tv-{device.type}: {checks[f'identical_to_torchvision_{device.type}']}"
        if device.type != "cpu":
            same += f"  same as tv-cpu: {checks['identical_to_torchvision_cpu']}"
        print(
            f"nms[{kind:16s}] kept {checks['kept']:5d}  ours {result['median_ms']['ours']:9.3f} ms"
            f"  torchvision {result['median_ms']['torchvision']:9.3f} ms  "
            f"ratio {result['ratio_ours_over_torchvision']:.3f}  {same}  "
            f"{'PASS' if passed else 'FAIL'}"
        )
        if "ours_host_scan_vs_torchvision" in extra:
            host = extra["ours_host_scan_vs_torchvision"]["median_ms"]["ours"]
            print(f"    (ours with the mask scanned on the host: {host:.3f} ms)")
    return ok_all


def bench_roi_align(device: torch.device, repeats: int, report: dict) -> bool:
    features, rois = roi_inputs(device)
    ok_all = True
    for sampling_ratio, aligned in ((2, True), (-1, False)):
        name = f"sampling_ratio={sampling_ratio},aligned={aligned}"
        args = ((7, 7), 0.125, sampling_ratio, aligned)
        result = time_pair(
            functools.partial(ops.roi_align, features, rois, *args),
            functools.partial(torchvision.ops.roi_align, features, rois, *args),
            device,
            repeats,
        )
        ours = ops.roi_align(features, rois, *args)
        same_device = torchvision.ops.roi_align(features, rois, *args)
        max_diff = float((ours - same_device).abs().max())
        entry = {
            "input": list(features.shape),
            "rois": rois.shape[0],
            "output_size": [7, 7],
            "spatial_scale": 0.125,
            "sampling_ratio": sampling_ratio,
            "aligned": aligned,
            "forward": result,
            "max_abs_diff": max_diff,
        }
        line = (
            f"roi_align[{name}] fwd ours {result['median_ms']['ours']:9.3f} ms  torchvision "
            f"{result['median_ms']['torchvision']:9.3f} ms  ratio "
            f"{result['ratio_ours_over_torchvision']:.3f}  max|diff| {max_diff:.2e}"
        )
        passed = max_diff <= ROI_ALIGN_TOLERANCE
        if device.type != "cpu":
            # torchvision's CUDA and CPU kernels round differently (FMA contractions); a
            # difference no larger than theirs (+1e-6) is within the reference's own spread.
            cpu = torchvision.ops.roi_align(features.cpu(), rois.cpu(), *args)
            reference_diff = float((same_device.cpu() - cpu).abs().max())
            entry["torchvision_device_vs_cpu_max_abs_diff"] = reference_diff
            entry["ours_vs_torchvision_cpu_max_abs_diff"] = float((ours.cpu() - cpu).abs().max())
            passed = passed or max_diff <= reference_diff + 1e-6
            line += (
                f"  (tv-{device.type} vs tv-cpu {reference_diff:.2e}, ours vs tv-cpu "
                f"{entry['ours_vs_torchvision_cpu_max_abs_diff']:.2e})"
            )
        if device.type == "cuda":
            leaf = features.detach().requires_grad_(True)
            grad_out = torch.randn(rois.shape[0], 256, 7, 7, device=device)

            def fwd_bwd(fn, leaf=leaf, args=args, grad_out=grad_out):
                return lambda: torch.autograd.grad(fn(leaf, rois, *args), leaf, grad_out)

            both = time_pair(
                fwd_bwd(ops.roi_align),
                fwd_bwd(torchvision.ops.roi_align),
                device,
                max(5, repeats // 3),
            )
            grad_diff = float(
                (fwd_bwd(ops.roi_align)()[0] - fwd_bwd(torchvision.ops.roi_align)()[0]).abs().max()
            )
            entry["forward_backward"] = both
            entry["grad_max_abs_diff"] = grad_diff
            passed = passed and grad_diff <= 1e-4
            line += (
                f"\n    fwd+bwd ours {both['median_ms']['ours']:9.3f} ms  torchvision "
                f"{both['median_ms']['torchvision']:9.3f} ms  ratio "
                f"{both['ratio_ours_over_torchvision']:.3f}  max|grad diff| {grad_diff:.2e}"
            )
        entry["pass"] = passed
        ok_all &= passed
        report["roi_align"][name] = entry
        print(line + f"  {'PASS' if passed else 'FAIL'}")
    if device.type == "cuda" and not report["triton_disabled"] and report["triton"]:
        from modernvision.ops._roi_align_triton import _CHOSEN

        # Tile shapes the kernels picked on their first call: (BLOCK_C, num_warps) per setting.
        report["roi_align_triton_tiles"] = {
            f"{key[0]} channels={key[3]} PH,PW={key[4]},{key[5]} SAMPLES={key[6]} "
            f"aligned={key[7]}": list(value)
            for key, value in _CHOSEN.items()
        }
    return ok_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--only", choices=["nms", "roi_align"], default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    repeats = args.repeats or (30 if device.type == "cuda" else 5)
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "triton_disabled": os.environ.get("MODERNVISION_DISABLE_TRITON", "0") == "1",
        "repeats": repeats,
        "nms": {},
        "roi_align": {},
    }
    try:
        import triton

        report["triton"] = triton.__version__
    except ImportError:
        report["triton"] = None
    start = time.perf_counter()
    ok = True
    if args.only in (None, "nms"):
        ok &= bench_nms(device, repeats, report)
    if args.only in (None, "roi_align"):
        ok &= bench_roi_align(
            device, max(3, repeats // 2) if device.type == "cpu" else repeats, report
        )
    report["load_average_at_end"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - start
    report["pass"] = ok
    print(f"{'PASS' if ok else 'FAIL'}: all checks ({report['wall_s']:.1f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
