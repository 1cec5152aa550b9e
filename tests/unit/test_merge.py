"""Unit and property tests of :mod:`pytest_allocbudget.budgets.merge` (``--alloc-update``)."""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.budgets.merge import Change, MergeResult, merge, merge_entry
from pytest_allocbudget.budgets.store import BudgetFile
from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.tolerance import Tolerance

PROFILE = "cpython-3.11"
OTHER = "cpython-3.9"
TEN_PERCENT = {"peak": Tolerance(percent=Fraction(10)), "retained": Tolerance(percent=Fraction(10))}

# ------------------------------------------------------------------------------------------------ strategies

keys = st.tuples(st.sampled_from(["t1", "t2", "t3", "t4", "m::t[x]"]), st.sampled_from([None, "a", "b"]))
metric_values = st.dictionaries(
    st.sampled_from(sorted(METRICS)), st.integers(min_value=0, max_value=10**6), min_size=1, max_size=len(METRICS)
)
profile_entries = st.dictionaries(keys, metric_values, max_size=8)
seeds = st.one_of(st.none(), st.integers(min_value=0, max_value=3))
budget_files = st.builds(
    BudgetFile, st.dictionaries(st.sampled_from([PROFILE, OTHER, "pypy-3.10"]), profile_entries, max_size=3), seeds
)
tolerance_values = st.builds(
    Tolerance,
    percent=st.fractions(min_value=0, max_value=50, max_denominator=100),
    absolute=st.integers(min_value=0, max_value=5000),
)
tolerance_maps = st.dictionaries(keys, st.dictionaries(st.sampled_from(sorted(METRICS)), tolerance_values))


def recorded(entries: dict[tuple[str, str | None], dict[str, int]], profile: str = PROFILE) -> BudgetFile:
    return BudgetFile({profile: entries})


# ------------------------------------------------------------------------------------------------ examples


@pytest.mark.smoke
def test_merge_creates_updates_and_keeps() -> None:
    budgets = recorded(
        {("kept", None): {"peak": 1000}, ("noisy", None): {"peak": 1000}, ("grown", None): {"peak": 1000}}
    )
    measured = {
        ("noisy", None): {"peak": 1100},  # +10%: within tolerance
        ("grown", None): {"peak": 1101},  # beyond it
        ("new", None): {"peak": 5, "retained": 0},
    }
    tolerances = {key: TEN_PERCENT for key in measured}
    result = merge(budgets, PROFILE, measured, tolerances)
    assert result.budgets.profiles[PROFILE] == {
        ("kept", None): {"peak": 1000},
        ("noisy", None): {"peak": 1000},
        ("grown", None): {"peak": 1101},
        ("new", None): {"peak": 5, "retained": 0},
    }
    assert result.changes == {
        ("noisy", None): Change.UNCHANGED,
        ("grown", None): Change.UPDATED,
        ("new", None): Change.CREATED,
    }
    assert result.modified
    assert (result.count(Change.CREATED), result.count(Change.UPDATED), result.count(Change.UNCHANGED)) == (1, 1, 1)


def test_merge_lowers_a_budget_that_improved_beyond_tolerance() -> None:
    budgets = recorded({("t", None): {"peak": 1000}})
    result = merge(budgets, PROFILE, {("t", None): {"peak": 899}}, {("t", None): TEN_PERCENT})
    assert result.budgets.get(PROFILE, ("t", None)) == {"peak": 899}
    assert result.changes == {("t", None): Change.UPDATED}
    result = merge(budgets, PROFILE, {("t", None): {"peak": 900}}, {("t", None): TEN_PERCENT})
    assert result.budgets.get(PROFILE, ("t", None)) == {"peak": 1000}
    assert result.changes == {("t", None): Change.UNCHANGED}
    assert not result.modified


def test_merge_keeps_metrics_recorded_but_not_measured() -> None:
    budgets = recorded({("t", None): {"peak": 1000, "retained": 200}})
    result = merge(budgets, PROFILE, {("t", None): {"peak": 5000}}, {("t", None): TEN_PERCENT})
    assert result.budgets.get(PROFILE, ("t", None)) == {"peak": 5000, "retained": 200}
    assert result.changes[("t", None)] is Change.UPDATED


def test_merge_adds_a_newly_measured_metric_to_an_entry() -> None:
    budgets = recorded({("t", None): {"peak": 1000}})
    result = merge(budgets, PROFILE, {("t", None): {"peak": 1000, "retained": 0}}, {("t", None): TEN_PERCENT})
    assert result.budgets.get(PROFILE, ("t", None)) == {"peak": 1000, "retained": 0}
    assert result.changes[("t", None)] is Change.UPDATED


def test_merge_regions_are_separate_entries() -> None:
    budgets = recorded({("t", None): {"peak": 10}, ("t", "a"): {"peak": 10}})
    result = merge(budgets, PROFILE, {("t", "b"): {"peak": 7}}, {})
    assert result.budgets.profiles[PROFILE] == {
        ("t", None): {"peak": 10},
        ("t", "a"): {"peak": 10},
        ("t", "b"): {"peak": 7},
    }
    assert result.changes == {("t", "b"): Change.CREATED}


def test_merge_into_a_new_profile_leaves_others_alone() -> None:
    budgets = recorded({("t", None): {"peak": 10}}, profile=OTHER)
    result = merge(budgets, PROFILE, {("t", None): {"peak": 99}}, {})
    assert result.budgets.profiles == {OTHER: {("t", None): {"peak": 10}}, PROFILE: {("t", None): {"peak": 99}}}
    assert result.changes == {("t", None): Change.CREATED}


def test_merge_without_a_tolerance_for_the_key_uses_the_metric_default() -> None:
    # The default for bytes is max(2%, 4 KiB): 4096 B above or below a 1000 B budget is within it.
    budgets = recorded({("t", None): {"peak": 1000}})
    within = merge(budgets, PROFILE, {("t", None): {"peak": 1000 + 4096}}, {})
    assert within.budgets.get(PROFILE, ("t", None)) == {"peak": 1000}
    assert within.changes[("t", None)] is Change.UNCHANGED
    beyond = merge(budgets, PROFILE, {("t", None): {"peak": 1000 + 4097}}, {})
    assert beyond.budgets.get(PROFILE, ("t", None)) == {"peak": 1000 + 4097}
    assert beyond.changes[("t", None)] is Change.UPDATED


def test_merge_nothing_measured() -> None:
    budgets = recorded({("t", None): {"peak": 1000}})
    result = merge(budgets, PROFILE, {}, {})
    assert result.budgets == budgets
    assert result.changes == {}
    assert not result.modified
    assert all(result.count(change) == 0 for change in Change)


def test_merge_does_not_mutate_its_inputs() -> None:
    budgets = recorded({("t", None): {"peak": 1000, "retained": 5}, ("u", None): {"peak": 1}})
    measured = {("t", None): {"peak": 9000}, ("v", None): {"peak": 3}}
    snapshot = copy.deepcopy(budgets)
    measured_snapshot = copy.deepcopy(measured)
    result = merge(budgets, PROFILE, measured, {})
    assert budgets == snapshot
    assert measured == measured_snapshot
    result.budgets.profiles[PROFILE][("v", None)]["peak"] = 4  # the new entries are not the caller's dicts
    assert measured == measured_snapshot


def test_merge_entry() -> None:
    assert merge_entry(None, {"peak": 1}, {}) == ({"peak": 1}, Change.CREATED)
    assert merge_entry({"peak": 100}, {"peak": 105}, TEN_PERCENT) == ({"peak": 100}, Change.UNCHANGED)
    assert merge_entry({"peak": 100}, {"peak": 111}, TEN_PERCENT) == ({"peak": 111}, Change.UPDATED)
    assert merge_entry({"peak": 100, "retained": 7}, {"retained": 7}, {}) == (
        {"peak": 100, "retained": 7},
        Change.UNCHANGED,
    )


def test_merge_result_defaults() -> None:
    result = MergeResult(BudgetFile())
    assert result.changes == {}
    assert not result.modified


# ------------------------------------------------------------------------------------------------ properties


@given(budget_files, st.sampled_from([PROFILE, OTHER, "new-profile"]), profile_entries, tolerance_maps)
def test_merge_properties(
    budgets: BudgetFile,
    profile: str,
    measured: dict[tuple[str, str | None], dict[str, int]],
    tolerances: dict[tuple[str, str | None], dict[str, Tolerance]],
) -> None:
    snapshot = copy.deepcopy(budgets)
    result = merge(budgets, profile, measured, tolerances)

    # the input is not mutated
    assert budgets == snapshot

    # every key reported changed was measured, and every measured key is reported
    assert set(result.changes) == set(measured)

    # other profiles are untouched
    for name, entries in snapshot.profiles.items():
        if name != profile:
            assert result.budgets.profiles[name] == entries
    assert set(result.budgets.profiles) == set(snapshot.profiles) | ({profile} if measured else set())

    before = snapshot.profile(profile)
    after = result.budgets.profile(profile)
    # entries of tests that did not run are never dropped or changed
    for key, values in before.items():
        if key not in measured:
            assert after[key] == values
    assert set(after) == set(before) | set(measured)

    for key, values in measured.items():
        old = before.get(key)
        new = after[key]
        change = result.changes[key]
        if old is None:
            assert change is Change.CREATED
            assert new == values
            continue
        # metrics recorded but not measured are kept
        for metric, value in old.items():
            if metric not in values:
                assert new[metric] == value
        moved = False
        for metric, value in values.items():
            tolerance = tolerances.get(key, {}).get(metric, METRICS[metric].default_tolerance)
            if metric in old and not tolerance.moved(old[metric], value):
                assert new[metric] == old[metric]  # within tolerance: left alone
            else:
                assert new[metric] == value  # beyond tolerance or new: the measurement
                moved = True
        assert change is (Change.UPDATED if moved else Change.UNCHANGED)
    assert result.modified == any(change is not Change.UNCHANGED for change in result.changes.values())


@given(budget_files, st.sampled_from([PROFILE, OTHER]), profile_entries, tolerance_maps)
def test_merge_is_idempotent(
    budgets: BudgetFile,
    profile: str,
    measured: dict[tuple[str, str | None], dict[str, int]],
    tolerances: dict[tuple[str, str | None], dict[str, Tolerance]],
) -> None:
    once = merge(budgets, profile, measured, tolerances)
    twice = merge(once.budgets, profile, measured, tolerances)
    assert twice.budgets == once.budgets
    assert all(change is Change.UNCHANGED for change in twice.changes.values())
    assert not twice.modified


@given(budget_files, st.sampled_from([PROFILE, OTHER]))
def test_merge_unchanged_measurements_change_nothing(budgets: BudgetFile, profile: str) -> None:
    # re-measuring exactly the recorded values, even with no tolerance at all, is a no-op
    measured = dict(budgets.profile(profile))
    result = merge(budgets, profile, measured, {})
    assert result.budgets.profile(profile) == budgets.profile(profile)
    assert not result.modified


# ------------------------------------------------------------------------------------------------ onto the current file

key_sets = st.frozensets(keys, max_size=6)


@given(budget_files, st.sampled_from([PROFILE, OTHER]), profile_entries, tolerance_maps, key_sets)
def test_merge_onto_the_current_file_changes_only_this_runs_entries(
    current: BudgetFile,
    profile: str,
    measured: dict[tuple[str, str | None], dict[str, int]],
    tolerances: dict[tuple[str, str | None], dict[str, Tolerance]],
    prune: frozenset[tuple[str, str | None]],
) -> None:
    # ``current`` is whatever the file holds when this run writes: what other runs wrote since this one started
    # included.  Only what this run measured and the stale entries it found may differ from it.
    snapshot = copy.deepcopy(current)
    result = merge(current, profile, measured, tolerances, prune)
    assert current == snapshot
    before, after = snapshot.profile(profile), result.budgets.profile(profile)
    removed = {key for key in prune if key in before and key not in measured}
    assert result.pruned == sorted(removed, key=lambda k: (k[0], k[1] or ""))
    # entries this run did not measure are the current file's, untouched, unless this run found them stale
    for key, values in before.items():
        if key not in measured and key not in removed:
            assert after[key] == values
    # everything this run measured is there; a stale entry no longer in the file is not brought back
    assert set(after) == (set(before) - removed) | set(measured)
    for key, values in measured.items():
        assert (result.changes[key] is Change.CREATED) == (key not in before)
        # a metric the file did not have for it takes this run's value (the others follow the tolerance rule)
        new_metrics = {metric: value for metric, value in values.items() if metric not in before.get(key, {})}
        assert {metric: after[key][metric] for metric in new_metrics} == new_metrics
    for name, entries in snapshot.profiles.items():
        if name != profile:
            assert result.budgets.profiles[name] == entries
    assert result.modified == (bool(removed) or any(c is not Change.UNCHANGED for c in result.changes.values()))


@given(budget_files, profile_entries, profile_entries, tolerance_maps, key_sets)
def test_a_second_writer_keeps_what_the_first_one_wrote(
    start: BudgetFile,
    first: dict[tuple[str, str | None], dict[str, int]],
    second: dict[tuple[str, str | None], dict[str, int]],
    tolerances: dict[tuple[str, str | None], dict[str, Tolerance]],
    prune: frozenset[tuple[str, str | None]],
) -> None:
    # Two runs started from the same file; the first writes, then the second merges onto what the first wrote.
    written = merge(start, PROFILE, first, tolerances).budgets
    final = merge(written, PROFILE, second, tolerances, prune).budgets.profile(PROFILE)
    for key, values in written.profile(PROFILE).items():
        if key not in second and key not in prune:
            assert final[key] == values  # the first writer's entries, its new values included
    for key, values in second.items():
        assert key in final
        if key not in written.profile(PROFILE):
            assert final[key] == values
    for key in first:
        assert key in final or (key in prune and key not in second)


# ------------------------------------------------------------------------------------------------ hash seed


def test_a_run_under_the_files_seed_keeps_it() -> None:
    budgets = BudgetFile({PROFILE: {("t1", None): {"peak": 100}}}, hash_seed=3)
    result = merge(budgets, PROFILE, {("t1", None): {"peak": 100}}, {}, hash_seed=3)
    assert result.budgets.hash_seed == 3
    assert not result.modified


def test_a_seedless_file_was_measured_under_seed_0_and_gets_it_written_with_the_next_change() -> None:
    budgets = BudgetFile({PROFILE: {("t1", None): {"peak": 100}}})
    unchanged = merge(budgets, PROFILE, {("t1", None): {"peak": 100}}, {}, hash_seed=0)
    assert not unchanged.modified  # naming the seed alone is no reason to write the file
    changed = merge(budgets, PROFILE, {("t2", None): {"peak": 5}}, {}, hash_seed=0)
    assert changed.modified
    assert changed.budgets.hash_seed == 0


def test_a_run_under_another_seed_writes_its_own() -> None:
    budgets = BudgetFile({PROFILE: {("t1", None): {"peak": 100}}}, hash_seed=0)
    result = merge(budgets, PROFILE, {("t1", None): {"peak": 100}}, {}, hash_seed=7)
    assert result.modified and result.seed_changed
    assert result.budgets.hash_seed == 7


def test_a_run_under_a_random_seed_leaves_the_files_seed() -> None:
    budgets = BudgetFile({PROFILE: {("t1", None): {"peak": 100}}}, hash_seed=2)
    result = merge(budgets, PROFILE, {("t1", None): {"peak": 100_000}}, {}, hash_seed=None)
    assert result.modified and not result.seed_changed
    assert result.budgets.hash_seed == 2


@given(budget_files, profile_entries, tolerance_maps, seeds)
def test_the_written_seed_is_the_runs_when_known_else_the_files(
    budgets: BudgetFile, measured: dict[tuple[str, str | None], dict[str, int]], tolerances: dict, seed: int | None
) -> None:
    result = merge(budgets, PROFILE, measured, tolerances, hash_seed=seed)
    if not measured:
        assert result.budgets is budgets
    else:
        assert result.budgets.hash_seed == (budgets.hash_seed if seed is None else seed)
        before = 0 if budgets.hash_seed is None else budgets.hash_seed
        assert result.seed_changed == (seed is not None and seed != before)
