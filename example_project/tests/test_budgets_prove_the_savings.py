"""The committed budgets are the evidence: every optimised path makes at most 40% of its naive twin's allocations.

The budgeted tests measure both twins of each pair; this test reads what ``pytest --alloc-update`` recorded in
allocbudget.yaml for the running Python version, so a re-recording that loses a saving fails here, in review,
even when every budget on its own is met. Pairs are found by name: a test with regions ``naive`` and
``optimized``, or two tests ``test_<path>_naive`` and ``test_<path>_optimized``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from pytest_allocbudget.budgets.store import EntryKey, load
from pytest_allocbudget.wiring.settings import profile_name

BUDGET_FILE = Path(__file__).resolve().parent.parent / "allocbudget.yaml"
PAIRS = ("split", "map_key_values", "map_sales", "shuffle", "reduce_partition", "summarize", "parse_frames")
MAX_SHARE = 0.4
SIDES = ("naive", "optimized")


def recorded_pairs(entries: Mapping[EntryKey, Mapping[str, int]]) -> dict[str, dict[str, Mapping[str, int]]]:
    """``{pair: {side: values}}`` from a profile's entries, by the naming rules above."""
    pairs: dict[str, dict[str, Mapping[str, int]]] = {}
    for (node_id, region), values in entries.items():
        test = node_id.rpartition("::")[2]
        if region in SIDES:
            name, side = test, region
        elif region is None and test.endswith(("_naive", "_optimized")):
            name, _, side = test.rpartition("_")
        else:
            continue
        pairs.setdefault(name[len("test_") :] if name.startswith("test_") else name, {})[side] = values
    return pairs


@pytest.fixture(scope="module")
def pairs() -> dict[str, dict[str, Mapping[str, int]]]:
    entries = load(BUDGET_FILE).profile(profile_name())
    if not entries:
        pytest.skip(f"{BUDGET_FILE.name} has no budgets for {profile_name()}; record them with pytest --alloc-update")
    return recorded_pairs(entries)


def test_every_pair_is_recorded_with_both_twins(pairs: dict[str, dict[str, Mapping[str, int]]]) -> None:
    assert set(PAIRS) <= set(pairs), f"pairs without budgets: {sorted(set(PAIRS) - set(pairs))}"
    incomplete = {name: sorted(sides) for name, sides in pairs.items() if set(sides) != set(SIDES)}
    assert not incomplete, f"pairs with one twin only: {incomplete}"


@pytest.mark.parametrize("name", PAIRS)
def test_optimized_makes_at_most_40_percent_of_the_allocations(
    name: str, pairs: dict[str, dict[str, Mapping[str, int]]]
) -> None:
    sides = pairs.get(name, {})
    if set(sides) != set(SIDES):
        pytest.fail(f"{name}: recorded twins {sorted(sides)}, expected {list(SIDES)}")
    if not all("allocations" in sides[side] for side in SIDES):
        pytest.skip(f"no allocation counts recorded for {name} under {profile_name()} (recorded without the counter?)")
    naive, optimized = sides["naive"]["allocations"], sides["optimized"]["allocations"]
    assert optimized <= MAX_SHARE * naive, (
        f"{name}: optimized {optimized:,} allocations against naive {naive:,} ({optimized / naive:.0%}), "
        f"more than {MAX_SHARE:.0%}"
    )
