from __future__ import annotations

import pytest

from wordfreq import top_words, top_words_naive

TEXT = " ".join(f"Word{i % 50} other{i % 7}" for i in range(2000))


@pytest.mark.alloc_budget
def test_top_words_naive() -> None:
    assert top_words_naive(TEXT, 3)[0] == ("other0", 286)


@pytest.mark.alloc_budget
def test_top_words_optimized() -> None:
    assert top_words(TEXT, 3)[0] == ("other0", 286)


def test_both_paths_in_regions(alloc_budget) -> None:
    with alloc_budget.measure("naive") as naive:
        expected = top_words_naive(TEXT, 5)
    with alloc_budget.measure("optimized") as optimized:
        result = top_words(TEXT, 5)
    assert result == expected
    assert optimized.peak < naive.peak
