"""Deterministic sample inputs for every job, from a seed: the tests' data, and a quick way to try the engine.

Everything comes from ``random.Random(seed)``, never from the global generator, so the same call gives the same
data in every process and on every Python version this project supports (their ``Random`` produces the same
numbers from the same seed for the methods used here).
"""

from __future__ import annotations

import itertools
import random

from .frames import encode_frames

__all__ = ["VOCABULARY", "key_values", "sales_rows", "sensor_blocks", "sensor_frames", "text_lines"]

_COMMON_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her all she there would their we him been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come since "
    "against go came right used take three"
)
_COMMON = _COMMON_WORDS.split()
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "dra", "pel", "quo", "fir", "gla", "hum", "jas")

#: The words of :func:`text_lines`, most frequent first: common English words, then made-up ones.
VOCABULARY: tuple[str, ...] = tuple(_COMMON) + tuple(
    first + second + third
    for first, second, third in itertools.islice(itertools.product(_SYLLABLES, repeat=3), 3 * len(_COMMON))
)
# Zipf's law: the word of rank r is drawn with a weight proportional to 1 / r.
_CUMULATIVE = tuple(itertools.accumulate(1.0 / rank for rank in range(1, len(VOCABULARY) + 1)))


def text_lines(count: int, seed: int = 0) -> list[str]:
    """``count`` lines of 4 to 16 words, with word frequencies that follow Zipf's law, as natural text does."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = rng.choices(VOCABULARY, cum_weights=_CUMULATIVE, k=rng.randint(4, 16))
        words[0] = words[0].capitalize()
        lines.append(" ".join(words) + rng.choice((".", ".", ".", "!", "?", ",")))
    return lines


def key_values(count: int, keys: int = 40, seed: int = 0) -> list[tuple[str, float | None]]:
    """``count`` ``(key, value)`` records over ``keys`` keys; about one value in twenty is missing (``None``)."""
    rng = random.Random(seed)
    names = [f"key{index:03d}" for index in range(keys)]
    return [
        (rng.choice(names), None if rng.random() < 0.05 else round(rng.gauss(100.0, 25.0), 3)) for _ in range(count)
    ]


_REGIONS = ("north", "south", "east", "west", "central", "islands")
_PRODUCTS = tuple(f"sku-{index:04d}" for index in range(120))


def sales_rows(count: int, seed: int = 0) -> list[tuple[int, int, str, str, str, float]]:
    """``count`` rows in :data:`minireduce.records.SALE_FIELDS` order; about one in twenty is a refund (< 0)."""
    rng = random.Random(seed)
    stores = [f"{region}-{number:02d}" for region in _REGIONS for number in range(1, 6)]
    rows = []
    for order in range(count):
        store = rng.choice(stores)
        amount = round(rng.uniform(1.0, 400.0), 2)
        if rng.random() < 0.05:
            amount = -amount
        rows.append((100_000 + order, rng.randint(1, 365), store.split("-")[0], store, rng.choice(_PRODUCTS), amount))
    return rows


def sensor_frames(count: int, sensors: int = 24, seed: int = 0) -> list[tuple[int, tuple[float, ...]]]:
    """``count`` frames of 1 to 16 readings each, from ``sensors`` sensors (ids 1 to ``sensors``)."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        sensor = rng.randint(1, sensors)
        base = 20.0 + sensor
        frames.append((sensor, tuple(round(base + rng.gauss(0.0, 3.0), 4) for _ in range(rng.randint(1, 16)))))
    return frames


def sensor_blocks(count: int, frames_per_block: int = 1000, sensors: int = 24, seed: int = 0) -> list[bytes]:
    """:func:`sensor_frames`, encoded into blocks of ``frames_per_block`` frames (the last one may be shorter)."""
    frames = sensor_frames(count, sensors, seed)
    return [
        encode_frames(frames[start : start + frames_per_block]) for start in range(0, len(frames), frames_per_block)
    ]
