"""torchrun support: the same script runs on 1 process or N (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun set up (env://). Returns whether we are distributed."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def all_reduce_sum(values: dict[str, torch.Tensor],
                   device: torch.device) -> dict[str, torch.Tensor]:
    """Sum each tensor (any shape) across ranks; a no-op on one process."""
    if world_size() == 1 or not values:
        return values
    keys = sorted(values)
    parts = [values[k].detach().to(device, torch.float64) for k in keys]
    flat = torch.cat([p.reshape(-1) for p in parts])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out, offset = {}, 0
    for k, p in zip(keys, parts):
        out[k] = flat[offset:offset + p.numel()].reshape(p.shape)
        offset += p.numel()
    return out


def all_gather_object(obj: object) -> list[object]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` on one process."""
    if world_size() == 1:
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
