"""Torch datasets over in-memory arrays and over a user's class folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from modernvision._errors import BadFileError, MissingFileError
from modernvision.data.datasets import ArrayDataset
from modernvision.data.io import read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")


class ArrayImageDataset(Dataset):
    """``(image, label)`` pairs from an :class:`ArrayDataset` (uint8 ``[N, H, W(, 3)]``).

    With ``transform=None`` images come out as float tensors ``[C, H, W]`` in [0, 1].

    Args:
        data: the arrays.
        transform: applied to each ``uint8 [C, H, W]`` image.
        precompute: apply ``transform`` once to the whole set (in batches) and serve the
            results. Only for deterministic transforms (test-time pipelines, training without
            augmentation): it turns ~0.2 ms of per-image Python work per epoch into one pass.
    """

    def __init__(self, data: ArrayDataset, transform: Callable | None = None, *,
                 precompute: bool = False) -> None:
        self.data, self.transform = data, transform
        self.classes = data.classes
        images = torch.from_numpy(np.array(data.images, copy=True))
        # (N, H, W) -> (N, 1, H, W); (N, H, W, 3) -> (N, 3, H, W)
        self.images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(data.labels)
        self._ready: torch.Tensor | None = None
        if precompute:
            tf = transform if transform is not None else (lambda x: x.float() / 255.0)
            chunks = [torch.as_tensor(tf(self.images[i:i + 4096]))
                      for i in range(0, len(self.images), 4096)]
            self._ready = torch.cat(chunks) if chunks else self.images.float()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        if self._ready is not None:
            return self._ready[i], self.labels[i]
        img = self.images[i]
        img = self.transform(img) if self.transform is not None else img.float() / 255.0
        return img, self.labels[i]


def load_image(path: str | Path, *, mode: str | None = None) -> Image.Image:
    """An image file as a PIL image (``"L"`` or ``"RGB"``) for torchvision transforms.

    The pixels come from :func:`modernvision.data.io.read_image` (16-bit scaled, alpha dropped,
    EXIF orientation applied; errors name the file); ``mode=None`` keeps grey files grey.
    """
    return Image.fromarray(read_image(path, mode=mode))


class ImageFolder(Dataset):
    """A user's own images in class folders: ``root/<class>/<image>``.

    Classes are the sorted sub-folder names; files with an image extension are taken. An empty
    root, or a class folder without images, is an error naming it.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None, *,
                 mode: str = "RGB") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "does not exist"
            raise MissingFileError(f"ImageFolder root {self.root} {what}")
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise BadFileError(f"ImageFolder root {self.root} is empty: expected one "
                               "sub-folder of images per class")
        self.samples: list[tuple[Path, int]] = []
        for label, cls in enumerate(self.classes):
            files = sorted(p for p in (self.root / cls).rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise BadFileError(f"class folder {self.root / cls} holds no images "
                                 f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
            self.samples += [(p, label) for p in files]
        self.transform, self.mode = transform, mode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        img = load_image(path, mode=self.mode)
        if self.transform is not None:
            img = self.transform(img)
        return img, label
