"""``modernvision data make-strings``: digit strings for image-to-sequence models.

Added to the ``data`` command's subparsers by :func:`register_strings_command` (called from
``modernvision/cli/data.py``).
"""

from __future__ import annotations

import argparse

from modernvision.cli._types import int_between, non_negative_int, positive_int


def _make_strings(args: argparse.Namespace) -> int:
    from modernvision._errors import InvalidArgumentError
    from modernvision.data.strings import StringsConfig, make_strings

    try:
        config = StringsConfig(height=args.height, width=args.width,
                               min_digits=args.min_digits, max_digits=args.max_digits)
    except InvalidArgumentError as exc:
        text = str(exc).replace("min_digits", "--min-digits").replace(
            "max_digits", "--max-digits").replace("height and width", "--height and --width")
        raise InvalidArgumentError(text) from None
    folder = make_strings(args.out, args.images, args.seed, split=args.split, config=config,
                          overwrite=args.overwrite)
    print(f"wrote {args.images} {args.split} strings of {config.min_digits}-"
          f"{config.max_digits} digits ({config.width}x{config.height}) to {folder} "
          f"(texts in {folder / 'labels.csv'})")
    return 0


def register_strings_command(data_subparsers: argparse._SubParsersAction) -> None:
    p = data_subparsers.add_parser(
        "make-strings", help="composite 1-6 real MNIST digits into digit-string images",
        description="Write digit-string images (real mnist-5k digits of the same split, left "
                    "to right, random sizes, offsets and gaps) with their texts, "
                    "deterministic from the seed; `train` reads them with --data "
                    "strings:DIR.")
    p.add_argument("--out", required=True, help="output folder (new, empty, or a strings "
                                                "folder without this split)")
    p.add_argument("--images", type=positive_int, default=1000,
                   help="number of images (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="random seed, >= 0 (default: %(default)s)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"],
                   help="split name, also the mnist-5k split the digits come from "
                        "(default: %(default)s)")
    p.add_argument("--min-digits", type=int_between(1, 32), default=1,
                   help="fewest digits per string (default: %(default)s)")
    p.add_argument("--max-digits", type=int_between(1, 32), default=6,
                   help="most digits per string (default: %(default)s)")
    p.add_argument("--height", type=positive_int, default=32,
                   help="image height in pixels, >= 16 (default: %(default)s)")
    p.add_argument("--width", type=positive_int, default=128,
                   help="image width in pixels, >= 16 (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace this split if --out already holds it (default: refuse)")
    p.set_defaults(func=_make_strings)
