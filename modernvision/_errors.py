"""Errors for people: name the argument, say what was expected, suggest close matches."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> KeyError:
    """A KeyError for an unknown registry name that lists the close matches."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(choices)}"
    )


class UnknownNameError(KeyError):
    """KeyError whose message prints as written (KeyError would repr() it)."""

    def __str__(self) -> str:
        return str(self.args[0])
