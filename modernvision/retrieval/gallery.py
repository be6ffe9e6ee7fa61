"""A persistent gallery of enrolled identities: embeddings, who they are, and which model made them.

The database is one ``.npz`` file (NumPy arrays, no pickles): ``embeddings`` float32 ``[N, D]``,
``identities`` and ``sources`` (the enrolled image files) ``[N]`` strings, and ``meta`` (JSON:
the model run, its embedding size, the face detector used, the format version). It grows without
retraining: enrolling a new identity embeds its images with the *same* model run and appends
them. Every write is atomic (a temporary file, fsync, rename): a reader sees the old database or
the new one, and an enrol that fails anywhere — an unreadable image, no face found, a crash
while writing — leaves the file exactly as it was. Embeddings of different models live in
different spaces, so a gallery refuses a model other than its own.

Queries rank the gallery by Euclidean distance through :class:`~modernvision.retrieval.index.
KNNIndex` (``exact`` by default; faiss flat / IVF / HNSW for large galleries).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError
from modernvision.engine.checkpoint import atomic_write_bytes

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Match:
    """One neighbour of a query: the enrolled identity, its image and the distance."""

    identity: str
    source: str
    distance: float


@dataclass(frozen=True)
class Gallery:
    """An immutable snapshot of a gallery database (``add`` / ``remove`` return new ones)."""

    embeddings: np.ndarray  # float32 [N, D]
    identities: tuple[str, ...]
    sources: tuple[str, ...]
    model_run: str | None = None  # the run folder that made the embeddings
    embedding_dim: int | None = None
    detect: str | None = None  # the face detector used at enrolment (None: whole images)
    meta: dict = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Gallery:
        return cls(np.zeros((0, 0), np.float32), (), ())

    def __len__(self) -> int:
        return len(self.identities)

    def counts(self) -> dict[str, int]:
        """Images per identity, in enrolment order."""
        out: dict[str, int] = {}
        for name in self.identities:
            out[name] = out.get(name, 0) + 1
        return out

    # -- I/O ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, missing_ok: bool = False) -> Gallery:
        """Read a database; a missing file is an error unless ``missing_ok`` (then: empty)."""
        path = Path(path)
        if not path.is_file():
            if missing_ok and not path.exists():
                return cls.empty()
            raise MissingFileError(f"gallery database {path} does not exist (create it with "
                                   "`modernvision gallery enrol --db DB --model RUN DIR`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                emb = np.asarray(z["embeddings"], np.float32)
                identities = tuple(str(s) for s in z["identities"])
                sources = tuple(str(s) for s in z["sources"])
        except (OSError, ValueError, KeyError) as exc:
            raise BadFileError(f"gallery database {path} is not a gallery file ({exc})") from exc
        if meta.get("version") != FORMAT_VERSION or len(identities) != len(emb) or len(
                sources) != len(emb):
            raise BadFileError(f"gallery database {path} is damaged or of another version")
        return cls(emb, identities, sources, meta.get("model_run"), meta.get("embedding_dim"),
                   meta.get("detect"), meta)

    def save(self, path: str | Path) -> Path:
        """Write the database atomically (the old file stays until the new one is complete)."""
        meta = dict(self.meta) | {"version": FORMAT_VERSION, "model_run": self.model_run,
                                  "embedding_dim": self.embedding_dim, "detect": self.detect,
                                  "size": len(self)}
        buf = io.BytesIO()
        np.savez(buf, embeddings=self.embeddings.astype(np.float32),
                 identities=np.array(self.identities, dtype=str),
                 sources=np.array(self.sources, dtype=str), meta=np.array(json.dumps(meta)))
        return atomic_write_bytes(path, buf.getvalue())

    # -- edits ----------------------------------------------------------------------------
    def check_model(self, model_run: str, embedding_dim: int) -> None:
        """Refuse a model whose embeddings do not belong in this gallery."""
        if not len(self) or self.model_run is None:
            return
        if embedding_dim != self.embedding_dim:
            raise InvalidArgumentError(
                f"--model {model_run} makes {embedding_dim}-d embeddings, but the gallery holds "
                f"{self.embedding_dim}-d ones made by {self.model_run}; use that model or "
                "another --db")
        if str(Path(model_run).resolve()) != self.model_run:
            raise InvalidArgumentError(
                f"--model {model_run} is not the model that made this gallery "
                f"({self.model_run}); embeddings of different models cannot be compared — use "
                "that model or another --db")

    def add(self, embeddings: Tensor | np.ndarray, identities: Sequence[str],
            sources: Sequence[str], *, model_run: str, detect: str | None) -> Gallery:
        emb = np.asarray(embeddings.detach().cpu() if isinstance(embeddings, Tensor)
                         else embeddings, np.float32)
        if emb.ndim != 2 or len(emb) != len(identities) or len(emb) != len(sources):
            raise InvalidArgumentError("one embedding, identity and source per image expected")
        self.check_model(model_run, emb.shape[1])
        if len(self) and detect != self.detect:
            raise InvalidArgumentError(
                f"this gallery was enrolled with --detect {self.detect or '(none)'}; enrol with "
                f"the same (got {detect or '(none)'})")
        old = self.embeddings if len(self) else np.zeros((0, emb.shape[1]), np.float32)
        return replace(self, embeddings=np.concatenate([old, emb]),
                       identities=self.identities + tuple(identities),
                       sources=self.sources + tuple(str(s) for s in sources),
                       model_run=str(Path(model_run).resolve()), embedding_dim=int(emb.shape[1]),
                       detect=detect)

    def remove(self, identity: str) -> Gallery:
        keep = np.array([name != identity for name in self.identities], dtype=bool)
        if keep.all():
            from modernvision._errors import unknown_name

            raise unknown_name("identity", identity, self.counts())
        return replace(self, embeddings=self.embeddings[keep],
                       identities=tuple(n for n, k in zip(self.identities, keep) if k),
                       sources=tuple(s for s, k in zip(self.sources, keep) if k))

    # -- search ---------------------------------------------------------------------------
    def search(self, queries: Tensor | np.ndarray, k: int = 5, *,
               backend: str = "exact") -> list[list[Match]]:
        """The ``k`` nearest enrolled images of each query embedding ``[Q, D]``."""
        from modernvision.retrieval.index import KNNIndex

        if not len(self):
            raise InvalidArgumentError("the gallery is empty: enrol identities first "
                                       "(`modernvision gallery enrol`)")
        index = KNNIndex(int(self.embedding_dim), backend=backend)
        index.add(self.embeddings)
        dist, idx = index.search(queries, k)
        return [[Match(self.identities[j], self.sources[j], float(d))
                 for d, j in zip(drow.tolist(), irow.tolist()) if j >= 0]
                for drow, irow in zip(dist, idx)]


def vote(matches: list[Match]) -> str:
    """The identity of a query: the most frequent among its matches, ties to the nearest."""
    score: dict[str, tuple[int, float]] = {}
    for m in matches:
        n, best = score.get(m.identity, (0, float("inf")))
        score[m.identity] = (n + 1, min(best, m.distance))
    return min(score, key=lambda name: (-score[name][0], score[name][1]))


# ---------------------------------------------------------------------------------------------
# Images -> embeddings with a trained run (and optionally a face detector)


def identity_folders(root: str | Path) -> list[tuple[str, list[Path]]]:
    """``[(identity, [image, ...]), ...]`` from ``root/<identity>/<image>`` (sorted)."""
    from modernvision.data.torch_datasets import IMAGE_EXTENSIONS

    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"IMAGES_DIR {root} is not a folder (expected one sub-folder "
                               "per identity)")
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if files:
            out.append((sub.name, files))
    if not out:
        raise MissingFileError(f"IMAGES_DIR {root} has no identity sub-folders with images "
                               f"(expected {root}/<identity>/<image>)")
    return out


class ImageEmbedder:
    """Embeds image files with a trained embedding run, cropping faces first when asked.

    Args:
        run_dir: a run of ``modernvision train --model embedding_net ...``.
        detect: a Viola-Jones cascade (``opencv:frontalface_default``, ``ours:lfw_24`` or a
            file): each image is cropped to its largest detection; an image without one is
            an error naming it. None embeds whole images.
        device: where the model runs.
    """

    def __init__(self, run_dir: str | Path, *, detect: str | None = None,
                 device: str = "cpu") -> None:
        from modernvision.engine.jobs import load_run

        run = load_run(run_dir, device=device)
        if run.job.name != "embedding":
            raise InvalidArgumentError(
                f"--model {run_dir} is a {run.job.name} run; a gallery needs an embedding run "
                "(`modernvision train --model embedding_net ...`)")
        self.run, self.run_dir = run, str(Path(run_dir).resolve())
        self.embedding_dim = int(run.model.embedding_dim)
        self.detect = detect
        self._cascade = None
        if detect is not None:
            from modernvision.classic.viola_jones import load_cascade

            self._cascade = load_cascade(detect)
        from modernvision.engine.jobs.embedding import image_transform

        self._transform = image_transform(run)
        self._mode = "L" if run.cfg.channels == 1 else "RGB"
        self._device = device

    def _crop(self, path: Path, pixels: np.ndarray) -> np.ndarray:
        from modernvision.classic.viola_jones import to_gray

        boxes = self._cascade.detect(to_gray(pixels), min_neighbors=3)
        if len(boxes) == 0:
            raise InvalidArgumentError(f"no face found in {path} (--detect {self.detect}); "
                                       "remove the image or enrol without --detect")
        x, y, w, h = max(boxes.tolist(), key=lambda b: b[2] * b[3])
        return pixels[y:y + h, x:x + w]

    def load(self, path: Path) -> Tensor:
        """One image file -> the preprocessed tensor the model takes (errors name the file)."""
        from PIL import Image

        from modernvision.data.io import read_image

        pixels = read_image(path, mode=self._mode)
        if self._cascade is not None:
            pixels = self._crop(path, pixels)
        return self._transform(Image.fromarray(np.ascontiguousarray(pixels)))

    def __call__(self, paths: Sequence[Path], *, batch_size: int = 256) -> Tensor:
        """``(N, embedding_dim)`` unit-length embeddings; every image is read (and checked)
        before any is embedded."""
        x = torch.stack([self.load(Path(p)) for p in paths])
        with torch.no_grad():
            return torch.cat([self.run.model(x[i:i + batch_size].to(self._device)).float().cpu()
                              for i in range(0, len(x), batch_size)])


def enrol(db: str | Path, model_run: str | Path, images_dir: str | Path, *,
          detect: str | None = None, embedder: Callable[..., Tensor] | None = None,
          device: str = "cpu") -> tuple[Gallery, dict[str, int]]:
    """Embed ``images_dir/<identity>/<image>`` with ``model_run`` and add them to ``db``
    (created when missing). All-or-nothing: on any error the database is unchanged.

    Returns:
        The new gallery and the images enrolled per identity.
    """
    gallery = Gallery.load(db, missing_ok=True)
    folders = identity_folders(images_dir)
    embed = embedder or ImageEmbedder(model_run, detect=detect, device=device)
    gallery.check_model(str(model_run), int(embed.embedding_dim))
    paths = [p for _, files in folders for p in files]
    names = [name for name, files in folders for _ in files]
    emb = embed(paths)
    new = gallery.add(emb, names, [str(p) for p in paths], model_run=str(model_run),
                      detect=detect)
    new.save(db)
    return new, {name: len(files) for name, files in folders}
