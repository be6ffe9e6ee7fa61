"""``modernvision data make-scenes`` and ``modernvision data show``.

Added to the ``data`` command's subparsers by :func:`register_data_commands` (called from
``modernvision/cli/data.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modernvision.cli._types import non_negative_int, positive_int

# SceneConfig's field names as make-scenes' flags, so its messages name what the user typed.
_FLAGS = {"min_objects": "--min-objects", "max_objects": "--max-objects",
          "min_object_size": "--min-object-size", "max_object_size": "--max-object-size",
          "image size": "--size"}


def _flag_names(message: str) -> str:
    import re

    return re.sub("|".join(rf"\b{re.escape(k)}\b" for k in _FLAGS), lambda m: _FLAGS[m[0]],
                  message)


def _scene_config(args: argparse.Namespace):
    from modernvision._errors import InvalidArgumentError
    from modernvision.data.scenes import SceneConfig

    # Default object sizes: 20..90 px, capped at 3/8 of the image side for small images.
    largest = args.max_object_size or min(90, max(4, args.size * 3 // 8))
    smallest = args.min_object_size or min(20, largest)
    try:
        return SceneConfig(height=args.size, width=args.size, objects=args.objects,
                           min_objects=args.min_objects, max_objects=args.max_objects,
                           min_object_size=smallest, max_object_size=largest,
                           tint=not args.grey)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(_flag_names(str(exc))) from None


def _make_scenes(args: argparse.Namespace) -> int:
    from modernvision.data.scenes import check_scene_output, check_scene_resources, make_scenes

    config = _scene_config(args)
    # Checked here first so that the messages name the flags; make_scenes checks again.
    stale = check_scene_output(args.out, args.split, overwrite=args.overwrite, out_name="--out",
                               overwrite_name="--overwrite")
    check_scene_resources(config, args.images, args.out, size_name="--size",
                          count_name="--images")
    if stale:
        print(f"--overwrite: replacing the {args.split!r} split of {args.out} "
              f"({len(stale)} files)")
    summary = make_scenes(args.out, args.images, args.seed, split=args.split, config=config,
                          overwrite=args.overwrite)
    p = summary.paths
    print(f"wrote {summary.images} {args.split} images with {summary.objects} objects to "
          f"{p.root}")
    print(f"  images:    {p.images}")
    print(f"  instances: {p.instances_json}")
    print(f"  panoptic:  {p.panoptic_json} + {p.panoptic}")
    print(f"  semantic:  {p.semantic} (classes in {p.semantic_json})")
    if summary.dropped:
        print(f"  dropped {summary.dropped} objects whose visible part was below "
              f"{config.min_visible_fraction:.0%} of the object or "
              f"{config.min_visible_pixels} pixels")
    return 0


def _show(args: argparse.Namespace) -> int:
    from modernvision.cli._types import output_file
    from modernvision.data.scenes import show_scenes

    if args.out is not None:
        output_file("--out", args.out)
        if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            from modernvision._errors import InvalidArgumentError

            raise InvalidArgumentError(f"--out {args.out}: expected a .png or .jpg file name")

    path = show_scenes(args.dir, args.split, num_images=args.n, out=args.out, ncols=args.cols)
    print(f"wrote {path}")
    return 0


def register_data_commands(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``make-scenes`` and ``show`` to the ``modernvision data`` subcommands."""
    p = data_subparsers.add_parser(
        "make-scenes",
        help="composite Fashion-MNIST items and MNIST digits onto brick/grass/gravel textures",
        description="Write a detection / instance / semantic / panoptic segmentation data set: "
                    "real objects with exact masks on real textures, in COCO format, "
                    "deterministic from the seed.")
    p.add_argument("--out", required=True,
                   help="output folder: new, empty, or a scenes folder without this split "
                        "(other splits in it are kept)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace this split if --out already holds it (deletes the files a "
                        "previous make-scenes wrote for it first; default: refuse)")
    p.add_argument("--images", type=positive_int, default=200,
                   help="number of images (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="random seed, >= 0 (default: %(default)s)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"],
                   help="split name, also the split the objects are taken from "
                        "(default: %(default)s)")
    p.add_argument("--size", type=positive_int, default=256,
                   help="image side in pixels, 16 or more; checked against free memory and "
                        "disk before any work (default: %(default)s)")
    p.add_argument("--objects", default="both", choices=["both", "fashion", "digits"],
                   help="object families (default: %(default)s)")
    p.add_argument("--min-objects", type=non_negative_int, default=3,
                   help="fewest objects per image (default: %(default)s)")
    p.add_argument("--max-objects", type=non_negative_int, default=8,
                   help="most objects per image (default: %(default)s)")
    p.add_argument("--min-object-size", type=positive_int, default=None,
                   help="smallest object side in pixels (default 20, at most the largest)")
    p.add_argument("--max-object-size", type=positive_int, default=None,
                   help="largest object side in pixels (default 90, at most 3/8 of --size)")
    p.add_argument("--grey", action="store_true", help="do not tint objects (default: tint)")
    p.set_defaults(func=_make_scenes)

    s = data_subparsers.add_parser(
        "show", help="draw boxes, masks and class names of a COCO-format folder",
        description="Draw the first images of DIR (annotations/instances_<split>.json and "
                    "images/<split>/) with their boxes, masks and class names into a PNG grid.")
    s.add_argument("dir", help="a folder written by make-scenes (or laid out like one)")
    s.add_argument("--split", default="train", help="split to show (default: %(default)s)")
    s.add_argument("--n", type=positive_int, default=8,
                   help="number of images (default: %(default)s)")
    s.add_argument("--cols", type=positive_int, default=4,
                   help="grid columns (default: %(default)s)")
    s.add_argument("--out", default=None, help="output PNG (default DIR/show_<split>.png)")
    s.set_defaults(func=_show)
