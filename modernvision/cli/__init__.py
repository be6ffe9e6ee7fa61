"""The ``modernvision`` command.

Each module of this package (not starting with ``_``) adds its subcommands through
``register(subparsers)``; each subcommand sets ``func(args) -> int | None``. ``register`` imports
nothing heavy (torch is imported by the handlers), so ``modernvision --help`` is fast.

A user's mistake raises a :class:`~modernvision._errors.UserError` (unknown name, missing or
damaged file, bad argument): it prints as one line and the command exits with 2. Any other
exception is a bug in the library and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from modernvision import __version__
from modernvision._errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modernvision",
        description="Modern computer vision, paper-faithful and verified against references.",
    )
    parser.add_argument("--version", action="version", version=f"modernvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import modernvision.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"modernvision.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        rc = args.func(args)
    except UserError as exc:
        print(f"modernvision {command_path(parser, argv)}: error: {error_text(exc)}",
              file=sys.stderr)
        return 2
    return int(rc or 0)


def command_path(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """The (sub)command words of ``argv``: ``data make-scenes`` for
    ``data make-scenes --out x``."""
    words = []
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or token not in subs[0].choices:
            break
        words.append(token)
        parser = subs[0].choices[token]
    return " ".join(words)


def error_text(exc: UserError) -> str:
    """The message of a user error as written (a KeyError would quote it)."""
    return str(exc.args[0]) if exc.args else str(exc)
