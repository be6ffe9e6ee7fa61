"""Sequence metrics: edit distance, character error rate, sequence accuracy.

The edit (Levenshtein) distance counts the fewest single-token insertions, deletions and
substitutions turning one sequence into another (Levenshtein 1966; the Wagner-Fischer dynamic
programme). The character error rate is the total edit distance over the total reference
length (so insertions can make it exceed 1); sequence accuracy is the fraction of exact matches.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["character_error_rate", "edit_distance", "sequence_accuracy"]


def edit_distance(hypothesis: Sequence, reference: Sequence) -> int:
    """Levenshtein distance between two sequences (strings or lists of tokens)."""
    prev = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, 1):
        cur = [i] + [0] * len(reference)
        for j, r in enumerate(reference, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h != r))
        prev = cur
    return prev[-1]


def character_error_rate(hypotheses: Sequence[Sequence], references: Sequence[Sequence]
                         ) -> float:
    """``sum(edit_distance) / sum(len(reference))``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("the references are empty")
    return sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True)) / total


def sequence_accuracy(hypotheses: Sequence[Sequence], references: Sequence[Sequence]) -> float:
    """The fraction of hypotheses equal to their reference."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return sum(list(h) == list(r) for h, r in zip(hypotheses, references, strict=True)) / len(
        references)
