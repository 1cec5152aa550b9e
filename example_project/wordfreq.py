"""Word frequencies, twice: a naive version and one that allocates less.

A placeholder for the fuller example to come; small, but its hot path is held to an allocation budget.
"""

from __future__ import annotations

from collections import Counter


def top_words_naive(text: str, n: int) -> list[tuple[str, int]]:
    """Lower-cases a copy of every word into an intermediate list, then counts."""
    words = [word.lower() for word in text.split()]
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """Lower-cases the text once and counts words from a generator: no intermediate list of words."""
    counts = Counter(text.lower().split())
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
