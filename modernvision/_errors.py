"""Errors for people: name the argument, say what was expected, suggest close matches.

:class:`UserError` marks a mistake in what a person gave us (an argument, a file, a name). The
command line catches only this type and prints its message as one line (exit code 2); anything
else is a library bug and keeps its traceback. Each subclass also derives from the builtin a
Python caller expects (``ValueError``, ``FileNotFoundError``, ``KeyError``), so library callers
can keep catching those.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input; its message is meant to be read as it is."""


class InvalidArgumentError(UserError, ValueError):
    """A value outside what an argument accepts (names the argument and what was expected)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist or is not what was expected."""


class BadFileError(UserError, ValueError):
    """A file exists but cannot be read as what was expected (truncated, malformed)."""


class UnknownNameError(UserError, KeyError):
    """KeyError whose message prints as written (KeyError would repr() it)."""

    def __str__(self) -> str:
        return str(self.args[0])


def unknown_name(kind: str, name: str, choices: Iterable[str], *,
                 list_command: str | None = None) -> UnknownNameError:
    """An error for an unknown registry name that names the close matches.

    The full list is given only when it is short; otherwise ``list_command`` (e.g.
    ``"modernvision models"``) tells where to see it.
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    if len(choices) <= 12 or list_command is None:
        tail = f" Known {kind}s: {', '.join(choices)}"
    else:
        tail = f" `{list_command}` lists all {len(choices)}."
    return UnknownNameError(f"unknown {kind} {name!r}.{hint}{tail}")
