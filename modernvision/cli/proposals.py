"""``modernvision proposals IMAGE... --out DIR``: selective-search object proposals.

Runs :func:`modernvision.classic.selective_search.selective_search` on each image, prints how
many proposals it found and how long it took, and writes ``DIR/<stem>_proposals.png`` (the best
``--top`` boxes drawn) and ``DIR/<stem>_proposals.txt`` (those boxes, ``x1 y1 x2 y2`` per line,
best first, pixel edges). Grey images are used as RGB, RGBA images without their alpha.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError


def read_image_file(path: Path) -> np.ndarray:
    """uint8 ``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` pixels of an image file."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise MissingFileError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: the top 8 bits
                return (np.asarray(img).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
            mode = "RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB"
            return np.asarray(img.convert("L" if img.mode in ("1", "L") else mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadFileError(f"{path}: not an image file that can be read ({exc})") from None


def _run(args: argparse.Namespace) -> int:
    from modernvision.classic.selective_search import selective_search, to_rgb
    from modernvision.viz.draw import draw_boxes, save_image

    if args.top < 1:
        raise InvalidArgumentError(f"--top must be >= 1, got {args.top}")
    images = [(Path(p), read_image_file(Path(p))) for p in args.images]  # fail before any work
    out_dir = Path(args.out)
    for path, image in images:
        image = to_rgb(image, name=str(path))  # grey repeated, alpha dropped
        start = time.perf_counter()
        boxes = selective_search(image, mode=args.mode, seed=args.seed,
                                 min_box_side=args.min_box_side)
        seconds = time.perf_counter() - start
        shown = boxes[: args.top]
        drawn = save_image(draw_boxes(image, shown, colors=(0, 255, 0)),
                           out_dir / f"{path.stem}_proposals.png")
        listing = out_dir / f"{path.stem}_proposals.txt"
        listing.write_text("".join(f"{x1:g} {y1:g} {x2:g} {y2:g}\n"
                                   for x1, y1, x2, y2 in shown.tolist()))
        print(f"{path}: {len(boxes)} proposals in {seconds:.2f} s ({image.shape[1]}x"
              f"{image.shape[0]}, mode {args.mode}); drew the best {len(shown)} -> {drawn}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "proposals",
        help="object proposals by selective search (Uijlings et al. 2013)",
        description="Selective search on each IMAGE: Felzenszwalb-Huttenlocher regions grouped "
        "hierarchically by colour, texture, size and fill similarity over several colour "
        "spaces and thresholds. Prints the number of proposals and the time; writes the best "
        "--top boxes drawn (PNG) and listed (x1 y1 x2 y2 per line).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for IMAGE_proposals.png and .txt (required)")
    p.add_argument("--mode", choices=("fast", "quality", "single", "fast-level", "fast-small"),
                   default="fast",
                   help="the paper's diversification: fast (8 groupings), quality (80) or "
                   "single; or, not the paper, fast-level (OpenCV's fast settings and level "
                   "ranking) or fast-small (fast-level, then fast) (default: %(default)s)")
    p.add_argument("--top", type=int, default=100, metavar="N",
                   help="how many of the best-ranked proposals to draw and list "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the paper's pseudo-random ranking (default: %(default)s)")
    p.add_argument("--min-box-side", type=int, default=0, metavar="PIXELS",
                   help="drop boxes narrower or lower than this (the authors' demo uses 20; "
                   "default: %(default)s)")
    p.set_defaults(func=_run)
