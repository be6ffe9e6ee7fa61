"""Selective-search proposals computed once per data set and kept on disk.

R-CNN and Fast R-CNN train for many epochs on the same images; their proposals do not change, so
they are computed once and stored. One ``.npz`` file per split sits next to the images (for a
folder ``DIR/images/train`` it is ``DIR/images/train-proposals-<digest>.npz``), where
``<digest>`` hashes the settings (the resolved :class:`SelectiveSearchConfig`, seed,
``min_box_side``, ``top`` and a format version). Entries are keyed by image id and file name; a
later call with the same settings loads them and computes only the images the file lacks. A file
that cannot be read, or one written with other settings, is recomputed and replaced (written to
a temporary file first and renamed, so an interrupted run never leaves half a file).

File layout (all arrays): ``digest`` and ``settings`` (JSON) strings, ``image_ids`` int64
``[M]``, ``file_names`` ``[M]``, ``offsets`` int64 ``[M + 1]`` and ``boxes`` float32 ``[T, 4]``
(xyxy pixel edges, best ranked first): image ``m``'s boxes are
``boxes[offsets[m]:offsets[m + 1]]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from modernvision._errors import InvalidArgumentError, unknown_name
from modernvision.classic.selective_search import (
    MODES,
    SelectiveSearchConfig,
    as_configs,
    selective_search,
)
from modernvision.data.formats.dataset import InstanceDataset, load_rgb
from modernvision.data.formats.records import DetectionDataset

__all__ = ["ProposalSettings", "dataset_proposals", "proposal_cache_file"]

CACHE_VERSION = 1


@dataclass(frozen=True)
class ProposalSettings:
    """How proposals are computed; the cache key hashes all of it.

    Attributes:
        mode: a mode of :func:`~modernvision.classic.selective_search.selective_search`
            (``"fast"``, ``"quality"``, ``"single"``, ``"fast-level"``, ``"fast-small"``;
            ignored when ``config`` is given).
        config: a diversification of one's own, or a tuple of them (a cascade).
        seed: seed of the ranking.
        min_box_side: drop boxes narrower or lower than this many pixels.
        top: keep the best ``top`` proposals per image (R-CNN's "about 2,000"); ``None``: all.
    """

    mode: str = "fast"
    config: SelectiveSearchConfig | tuple[SelectiveSearchConfig, ...] | None = None
    seed: int = 0
    min_box_side: int = 0
    top: int | None = 2000

    def __post_init__(self) -> None:
        if self.config is None and self.mode not in MODES:
            raise unknown_name("selective search mode", self.mode, MODES)
        if self.config is not None:
            as_configs(self.config)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidArgumentError(f"seed must be an integer, got {self.seed!r}")

    @property
    def resolved(self) -> SelectiveSearchConfig | tuple[SelectiveSearchConfig, ...]:
        return self.config if self.config is not None else MODES[self.mode]

    def as_dict(self) -> dict:
        configs = [asdict(c) for c in as_configs(self.resolved)]
        config = configs if isinstance(self.resolved, tuple) else configs[0]
        return {"version": CACHE_VERSION, "config": config, "seed": self.seed,
                "min_box_side": self.min_box_side, "top": self.top}

    def digest(self) -> str:
        """16 hex digits identifying these settings."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def compute(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The proposals of one image: float32 ``[N, 4]`` xyxy, best first."""
        return selective_search(image, config=self.resolved, seed=self.seed,
                                min_box_side=self.min_box_side, top=self.top)


def proposal_cache_file(image_dir: str | Path, settings: ProposalSettings) -> Path:
    """Where :func:`dataset_proposals` keeps the proposals of the images in ``image_dir``."""
    image_dir = Path(image_dir)
    return image_dir.parent / f"{image_dir.name}-proposals-{settings.digest()}.npz"


def _read_cache(path: Path, digest: str) -> dict[tuple[int, str], np.ndarray] | None:
    """The cached boxes by (image id, file name); ``None`` if unreadable or other settings."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["digest"]) != digest:
                return None
            ids, names = data["image_ids"], data["file_names"]
            offsets, boxes = data["offsets"], data["boxes"]
            if offsets.shape != (len(ids) + 1,) or boxes.ndim != 2 or boxes.shape[1] != 4:
                return None
            return {(int(i), str(n)): boxes[offsets[m]:offsets[m + 1]]
                    for m, (i, n) in enumerate(zip(ids, names))}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _write_cache(path: Path, settings: ProposalSettings,
                 entries: dict[tuple[int, str], np.ndarray]) -> None:
    keys = sorted(entries)
    counts = np.array([len(entries[k]) for k in keys], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    boxes = (np.concatenate([entries[k] for k in keys]) if keys else np.zeros((0, 4))).astype(
        np.float32)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, digest=np.array(settings.digest()),
                 settings=np.array(json.dumps(settings.as_dict(), sort_keys=True)),
                 image_ids=np.array([k[0] for k in keys], dtype=np.int64),
                 file_names=np.array([k[1] for k in keys], dtype=str),
                 offsets=offsets, boxes=boxes.reshape(-1, 4))
    os.replace(tmp, path)


def dataset_proposals(dataset: InstanceDataset | DetectionDataset,
                      image_dir: str | Path | None = None, *,
                      settings: ProposalSettings | None = None,
                      cache_file: str | Path | None = None,
                      log: Callable[[str], None] | None = None) -> dict[int, torch.Tensor]:
    """Proposals of every image of a data set, computed once and cached.

    Args:
        dataset: an :class:`InstanceDataset` (its records and image folder are used) or a
            :class:`DetectionDataset` with ``image_dir``.
        image_dir: the folder the records' ``file_name`` are relative to (for a
            ``DetectionDataset``).
        settings: how to compute them (default :class:`ProposalSettings`: fast mode, top 2,000).
        cache_file: where to keep them (default :func:`proposal_cache_file`).
        log: called with one line per event (computed, loaded, replaced a stale file).

    Returns:
        ``{image_id: float32 [N, 4] xyxy}``, best ranked first.
    """
    settings = settings or ProposalSettings()
    if isinstance(dataset, InstanceDataset):
        records, image_dir = dataset.records, dataset.image_dir
    elif isinstance(dataset, DetectionDataset):
        if image_dir is None:
            raise InvalidArgumentError("image_dir is required with a DetectionDataset")
        records = dataset
    else:
        raise InvalidArgumentError(
            f"dataset must be an InstanceDataset or a DetectionDataset, got "
            f"{type(dataset).__name__}")
    image_dir = Path(image_dir)
    path = Path(cache_file) if cache_file is not None else proposal_cache_file(image_dir,
                                                                               settings)
    say = log or (lambda _line: None)
    cached: dict[tuple[int, str], np.ndarray] = {}
    stale = not path.is_file()
    if not stale:
        read = _read_cache(path, settings.digest())
        stale = read is None
        if stale:
            say(f"{path}: unreadable or written with other settings; recomputing")
        else:
            cached = read
    out: dict[int, torch.Tensor] = {}
    computed = 0
    for rec in records.images:
        key = (int(rec.image_id), rec.file_name)
        if key not in cached:
            cached[key] = settings.compute(load_rgb(image_dir / rec.file_name)).numpy()
            computed += 1
        out[key[0]] = torch.from_numpy(np.array(cached[key], dtype=np.float32).reshape(-1, 4))
    if computed or stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_cache(path, settings, cached)
    say(f"proposals for {len(out)} images: {len(out) - computed} loaded from {path}, "
        f"{computed} computed")
    return out
