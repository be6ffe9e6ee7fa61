"""The ``modernvision`` command.

Each module of this package (not starting with ``_``) adds its subcommands through
``register(subparsers)``; each subcommand sets ``func(args) -> int | None``. A user's mistake
(unknown name, missing file, bad argument) prints one clear line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from modernvision._errors import UnknownNameError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modernvision",
        description="Modern computer vision, paper-faithful and verified against references.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import modernvision.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"modernvision.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except (UnknownNameError, FileNotFoundError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, UnknownNameError) else str(exc)
        print(f"modernvision {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(rc or 0)
