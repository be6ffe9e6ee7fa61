"""External region proposals for R-CNN and Fast R-CNN: where they come from, how they enter.

R-CNN (arXiv:1311.2524) and Fast R-CNN (arXiv:1504.08083) do not propose regions themselves:
selective search (:mod:`modernvision.classic.selective_search`) does, about 2,000 per image.
Here the detector owns a :class:`ProposalProvider` and computes them for every image it is
given -- in training, evaluation and ``predict`` alike -- so the detection job and the
detector interface (``model(images)``, ``model(images, targets)``) stay the same as Faster
R-CNN's. Proposals are memoised by the image's **content** (SHA-1 of its 8-bit RGB pixels and
shape, the same pixels selective search reads): the second epoch over a training set, or a
second evaluation, finds them in memory and pays nothing. With ``cache_dir`` they are also kept
on disk, one ``.npy`` per image under a folder named by the settings' digest, so later runs
(``modernvision eval``, ``predict``, another training) reuse them. :meth:`ProposalProvider.preload`
fills the memo from a data set's precomputed file of
:func:`modernvision.classic.proposal_cache.dataset_proposals` (keyed by image id there).

A caller with proposals of its own passes them directly: ``model(images, proposals=[...])``
(one ``Tensor[N_i, 4]`` xyxy per image, in the input image's pixels); an empty one is allowed
and gives an empty result in evaluation.

Memoising by content needs the same pixels every epoch: with random augmentation (``--augmentation
photometric|ssd``) every view is new and its proposals are computed afresh (correct, but slow).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from modernvision._errors import InvalidArgumentError
from modernvision.classic.proposal_cache import ProposalSettings, dataset_proposals
from modernvision.classic.selective_search import to_rgb
from modernvision.data.formats.dataset import InstanceDataset, load_rgb
from modernvision.models.detection._generalized import Detector, Target
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import scale_boxes
from modernvision.ops import clip_boxes_to_image

__all__ = ["ProposalBatch", "ProposalDetector", "ProposalProvider", "proposal_provider"]


class ProposalProvider:
    """Selective-search proposals of an image, memoised by its content.

    Args:
        settings: how they are computed (mode, ``top``, seed; default: fast mode, top 2,000).
        cache_dir: also keep them on disk under this folder (``None``: in memory only).
    """

    def __init__(self, settings: ProposalSettings | None = None, *,
                 cache_dir: str | Path | None = None) -> None:
        self.settings = settings or ProposalSettings()
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / self.settings.digest()
        self._memo: dict[str, Tensor] = {}
        self.computed = 0  # images whose proposals were computed (not found) so far

    def __repr__(self) -> str:
        s = self.settings
        return (f"ProposalProvider(mode={s.mode!r}, top={s.top}, seed={s.seed}, "
                f"cache_dir={self.cache_dir}, memoised={len(self._memo)})")

    def __len__(self) -> int:
        return len(self._memo)

    @staticmethod
    def key(rgb: np.ndarray) -> str:
        """SHA-1 of an 8-bit ``[H, W, 3]`` image's shape and pixels."""
        digest = hashlib.sha1(np.asarray(rgb.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(rgb).tobytes())
        return digest.hexdigest()

    def __call__(self, image: Tensor | np.ndarray) -> Tensor:
        """Proposals of one image (``Tensor[3, H, W]`` in [0, 1], or what
        :func:`~modernvision.classic.selective_search.to_rgb` accepts): float32 ``[N, 4]`` xyxy
        in its pixels, best ranked first, on the CPU."""
        rgb = to_rgb(image)
        key = self.key(rgb)
        boxes = self._memo.get(key)
        if boxes is None:
            boxes = self._load(key)
        if boxes is None:
            boxes = self.settings.compute(rgb).to(torch.float32).reshape(-1, 4)
            self.computed += 1
            self._store(key, boxes)
        self._memo[key] = boxes
        return boxes

    def add(self, image: Tensor | np.ndarray, boxes: Tensor | np.ndarray) -> None:
        """Use ``boxes`` (``[N, 4]`` xyxy) as the proposals of ``image`` from now on."""
        boxes = torch.as_tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 4)
        self._memo[self.key(to_rgb(image))] = boxes

    def preload(self, dataset: InstanceDataset, *, cache_file: str | Path | None = None,
                log: Callable[[str], None] | None = None) -> int:
        """Memoise the proposals of every image of ``dataset`` from (or into) its precomputed
        file (:func:`~modernvision.classic.proposal_cache.dataset_proposals`, same settings).
        Returns the number of images."""
        by_id = dataset_proposals(dataset, settings=self.settings, cache_file=cache_file,
                                  log=log)
        for rec in dataset.records.images:
            rgb = load_rgb(dataset.image_dir / rec.file_name)
            self._memo[self.key(rgb)] = by_id[int(rec.image_id)]
        return len(by_id)

    def _path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npy"

    def _load(self, key: str) -> Tensor | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # unreadable: recomputed and rewritten
        if arr.ndim != 2 or arr.shape[1] != 4:
            return None
        return torch.from_numpy(arr.astype(np.float32))

    def _store(self, key: str, boxes: Tensor) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, boxes.numpy())
        tmp.replace(path)


@dataclass
class ProposalBatch(ImageBatch):
    """An :class:`ImageBatch` with each image's proposals in batch coordinates.

    Attributes:
        proposals: per image, ``Tensor[N_i, 4]`` xyxy in ``tensors``' pixels.
    """

    proposals: list[Tensor] = field(default_factory=list)


class ProposalDetector(Detector):
    """A :class:`Detector` whose second stage scores external proposals.

    ``forward(images, targets=None, *, proposals=None)``: without ``proposals`` the
    :attr:`proposal_provider` computes (or finds) them for each input image.

    Args:
        transform: as :class:`Detector`'s.
        num_classes: classes including the background.
        proposal_provider: where proposals come from.
    """

    def __init__(self, transform, *, num_classes: int,
                 proposal_provider: ProposalProvider) -> None:
        super().__init__(transform, num_classes=num_classes)
        if not isinstance(proposal_provider, ProposalProvider):
            raise InvalidArgumentError(
                f"proposal_provider must be a ProposalProvider, got "
                f"{type(proposal_provider).__name__}")
        self.proposal_provider = proposal_provider
        self._given: Sequence[Tensor] | None = None

    def forward(
        self, images: Tensor | Sequence[Tensor], targets: Sequence[Target] | None = None, *,
        proposals: Sequence[Tensor] | None = None,
    ) -> dict[str, Tensor] | list[Detections]:
        """Losses (training) or detections (eval); ``proposals``: one ``Tensor[N_i, 4]`` xyxy
        per image in its pixels, or ``None`` to compute them."""
        self._given = proposals
        try:
            return super().forward(images, targets)
        finally:
            self._given = None

    def prepare(
        self, images: Tensor | Sequence[Tensor], image_list: list[Tensor],
        targets: list[Target] | None,
    ) -> tuple[ProposalBatch, list[Target] | None]:
        proposals = self._proposals(image_list)
        batch, targets = super().prepare(images, image_list, targets)
        scaled = []
        for boxes, image, size in zip(proposals, image_list, batch.image_sizes):
            boxes = boxes.to(device=batch.tensors.device, dtype=batch.tensors.dtype)
            original = (int(image.shape[-2]), int(image.shape[-1]))
            if original != size:
                boxes = scale_boxes(boxes, original, size)
            scaled.append(boxes)
        return ProposalBatch(batch.tensors, batch.image_sizes, scaled), targets

    def _proposals(self, image_list: list[Tensor]) -> list[Tensor]:
        given = self._given
        if given is None:
            return [self.proposal_provider(image) for image in image_list]
        if not isinstance(given, (list, tuple)) or len(given) != len(image_list):
            n = len(given) if isinstance(given, (list, tuple)) else type(given).__name__
            raise InvalidArgumentError(
                f"proposals must be a list with one Tensor[N, 4] per image ({len(image_list)}),"
                f" got {n}")
        out = []
        for i, (boxes, image) in enumerate(zip(given, image_list)):
            if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4 \
                    or not boxes.is_floating_point():
                got = (f"{tuple(boxes.shape)} {boxes.dtype}" if isinstance(boxes, Tensor)
                       else type(boxes).__name__)
                raise InvalidArgumentError(
                    f"proposals[{i}] must be a float Tensor[N, 4] of (x1, y1, x2, y2) pixels "
                    f"(N may be 0), got {got}")
            if not bool(torch.isfinite(boxes).all()):
                raise InvalidArgumentError(f"proposals[{i}] has NaN or infinite coordinates")
            out.append(clip_boxes_to_image(boxes.detach(), tuple(image.shape[-2:])))
        return out


def proposal_provider(mode: str = "fast", top: int | None = 2000,
                      cache_dir: str | Path | None = None) -> ProposalProvider:
    """The provider the builders make from their ``proposal_mode``, ``proposal_top`` and
    ``proposal_cache`` keywords."""
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InvalidArgumentError(f"proposal_top must be a positive int or None, got {top!r}")
    return ProposalProvider(ProposalSettings(mode=mode, top=top), cache_dir=cache_dir)
