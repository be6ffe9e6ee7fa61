"""Upsampling written out: nearest neighbour, bilinear, and resizing label maps.

A fully convolutional net scores a coarse grid (stride 8 to 32); upsampling brings the scores
back to the image's pixels (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
Semantic Segmentation", 2015, arXiv:1411.4038, Sec. 3.3).

Coordinates follow ``torch.nn.functional.interpolate`` exactly, so both functions equal it:

* **nearest**: output pixel ``i`` copies input pixel ``floor(i * in / out)``. A 2x2 map
  ``[[1, 2], [3, 4]]`` becomes four 2x2 blocks of 1, 2, 3 and 4.
* **bilinear** (``align_corners=False``, pixels as unit squares): output pixel ``i`` sits at
  input coordinate ``x = (i + 0.5) * in / out - 0.5`` (clamped at 0), and its value mixes the two
  nearest input pixels with weights ``1 - frac(x)`` and ``frac(x)``, in each axis. The same 2x2
  map becomes rows ``[1, 1.25, 1.75, 2]``, ``[1.5, 1.75, 2.25, 2.5]``, ``[2.5, 2.75, 3.25, 3.5]``,
  ``[3, 3.25, 3.75, 4]``. With ``align_corners=True`` the corner pixels' centres coincide:
  ``x = i * (in - 1) / (out - 1)``.

Label maps must not be resized bilinearly: the mean of class 1 and class 3 is class 2, a class
that is nowhere in the image (and a fractional label is no class at all). Resize them with
nearest neighbour (:func:`resize_labels`); upsample the *scores* bilinearly, then take argmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError

__all__ = ["Upsample", "resize_labels", "upsample_bilinear", "upsample_nearest"]


def _out_size(x: Tensor, size: int | tuple[int, int] | None,
              scale_factor: int | None) -> tuple[int, int]:
    if x.dim() != 4:
        raise InvalidArgumentError(f"input must be (B, C, H, W), got shape {tuple(x.shape)}")
    if (size is None) == (scale_factor is None):
        raise InvalidArgumentError("give exactly one of size and scale_factor")
    if size is not None:
        out = (size, size) if isinstance(size, int) else tuple(size)
    else:
        if not isinstance(scale_factor, int) or scale_factor < 1:
            raise InvalidArgumentError(f"scale_factor must be a positive int, got "
                                       f"{scale_factor!r}")
        out = (x.shape[2] * scale_factor, x.shape[3] * scale_factor)
    if len(out) != 2 or min(out) < 1:
        raise InvalidArgumentError(f"size must be positive (H, W), got {size!r}")
    return out  # type: ignore[return-value]


def _nearest_index(n_in: int, n_out: int, device: torch.device) -> Tensor:
    # torch's "nearest": src = floor(dst * in / out), computed as a float32 scale like torch.
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    idx = (torch.arange(n_out, device=device, dtype=torch.float32) * scale).floor().long()
    return idx.clamp_(max=n_in - 1)


def upsample_nearest(x: Tensor, size: int | tuple[int, int] | None = None, *,
                     scale_factor: int | None = None) -> Tensor:
    """Nearest-neighbour resize of ``(B, C, H, W)`` to ``size`` or ``H * scale_factor``.

    Equals ``F.interpolate(x, size, mode="nearest")``.
    """
    oh, ow = _out_size(x, size, scale_factor)
    rows = _nearest_index(x.shape[2], oh, x.device)
    cols = _nearest_index(x.shape[3], ow, x.device)
    return x[:, :, rows][:, :, :, cols]


def _linear_weights(n_in: int, n_out: int, align_corners: bool, device: torch.device,
                    dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """For each output position: the lower and upper input index and the upper's weight."""
    i = torch.arange(n_out, device=device, dtype=dtype)
    if align_corners:
        x = i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else torch.zeros_like(i)
    else:
        x = ((i + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    lo = x.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo, hi, x - lo.to(dtype)


def upsample_bilinear(x: Tensor, size: int | tuple[int, int] | None = None, *,
                      scale_factor: int | None = None, align_corners: bool = False) -> Tensor:
    """Bilinear resize of ``(B, C, H, W)``: linear along the rows, then along the columns.

    Equals ``F.interpolate(x, size, mode="bilinear", align_corners=align_corners)``.
    """
    oh, ow = _out_size(x, size, scale_factor)
    if not x.is_floating_point():
        raise InvalidArgumentError("bilinear upsampling needs a float tensor (resize label "
                                   "maps with resize_labels, i.e. nearest neighbour)")
    r0, r1, wr = _linear_weights(x.shape[2], oh, align_corners, x.device, x.dtype)
    c0, c1, wc = _linear_weights(x.shape[3], ow, align_corners, x.device, x.dtype)
    wr, wc = wr.view(1, 1, -1, 1), wc.view(1, 1, 1, -1)
    rows = x[:, :, r0] * (1 - wr) + x[:, :, r1] * wr  # (B, C, oh, W)
    return rows[:, :, :, c0] * (1 - wc) + rows[:, :, :, c1] * wc


def resize_labels(labels: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a label map ``(H, W)`` or ``(B, H, W)`` (integer classes
    stay classes; see the module docstring for why never bilinear)."""
    if labels.dim() not in (2, 3):
        raise InvalidArgumentError(f"labels must be (H, W) or (B, H, W), got shape "
                                   f"{tuple(labels.shape)}")
    batched = labels if labels.dim() == 3 else labels[None]
    out = upsample_nearest(batched[:, None], size)[:, 0]
    return out if labels.dim() == 3 else out[0]


class Upsample(nn.Module):
    """Parameter-free upsampling by an integer ``scale_factor``: ``"nearest"`` or
    ``"bilinear"`` (``align_corners=False``)."""

    def __init__(self, scale_factor: int, mode: str = "bilinear") -> None:
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise InvalidArgumentError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "nearest":
            return upsample_nearest(x, scale_factor=self.scale_factor)
        return upsample_bilinear(x, scale_factor=self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
