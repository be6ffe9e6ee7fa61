"""``modernvision data make-scenes`` and ``modernvision data show``.

Added to the ``data`` command's subparsers by :func:`register_data_commands` (called from
``modernvision/cli/data.py``).
"""

from __future__ import annotations

import argparse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _make_scenes(args: argparse.Namespace) -> int:
    from modernvision.data.scenes import SceneConfig, make_scenes

    # Default object sizes: 20..90 px, capped at 3/8 of the image side for small images.
    largest = args.max_object_size or min(90, max(4, args.size * 3 // 8))
    smallest = args.min_object_size or min(20, largest)
    config = SceneConfig(height=args.size, width=args.size, objects=args.objects,
                         min_objects=args.min_objects, max_objects=args.max_objects,
                         min_object_size=smallest, max_object_size=largest,
                         tint=not args.grey)
    summary = make_scenes(args.out, args.images, args.seed, split=args.split, config=config)
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
    from modernvision.data.scenes import show_scenes

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
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--images", type=_positive_int, default=200, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--split", default="train", choices=["train", "val", "test"],
                   help="split name (also the split the objects are taken from)")
    p.add_argument("--size", type=_positive_int, default=256, help="image side in pixels")
    p.add_argument("--objects", default="both", choices=["both", "fashion", "digits"],
                   help="object families")
    p.add_argument("--min-objects", type=int, default=3, help="fewest objects per image")
    p.add_argument("--max-objects", type=int, default=8, help="most objects per image")
    p.add_argument("--min-object-size", type=_positive_int, default=None,
                   help="smallest object side in pixels (default 20, at most the largest)")
    p.add_argument("--max-object-size", type=_positive_int, default=None,
                   help="largest object side in pixels (default 90, at most 3/8 of --size)")
    p.add_argument("--grey", action="store_true", help="do not tint objects")
    p.set_defaults(func=_make_scenes)

    s = data_subparsers.add_parser(
        "show", help="draw boxes, masks and class names of a COCO-format folder",
        description="Draw the first images of DIR (annotations/instances_<split>.json and "
                    "images/<split>/) with their boxes, masks and class names into a PNG grid.")
    s.add_argument("dir", help="a folder written by make-scenes (or laid out like one)")
    s.add_argument("--split", default="train", help="split to show")
    s.add_argument("--n", type=_positive_int, default=8, help="number of images")
    s.add_argument("--cols", type=_positive_int, default=4, help="grid columns")
    s.add_argument("--out", default=None, help="output PNG (default DIR/show_<split>.png)")
    s.set_defaults(func=_show)
