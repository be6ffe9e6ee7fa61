"""Edit distance, CER and sequence accuracy on cases with known answers."""

import pytest

from modernvision.metrics.sequence import character_error_rate, edit_distance, sequence_accuracy


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("abc", "abc", 0), ("kitten", "sitting", 3),
                                   ("", "12", 2), ("123", "", 3), ("1234", "1324", 2),
                                   ("flaw", "lawn", 2)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_cer_and_accuracy():
    assert character_error_rate(["12", "345"], ["12", "35"]) == pytest.approx(1 / 4)
    assert sequence_accuracy(["12", "345"], ["12", "35"]) == 0.5
