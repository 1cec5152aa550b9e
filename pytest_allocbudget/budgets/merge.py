"""Folding a run's measurements into the recorded budgets (``--alloc-update``).  Pure: returns a new value.

Rules that keep the budget file trustworthy:

* only entries measured in this run are touched; every other entry (tests deselected, skipped, failed, not
  collected, other profiles) is carried over untouched;
* a recorded value is rewritten only when the new measurement moved beyond the tolerance, in either direction,
  so re-recording on another machine does not churn the file with noise;
* a metric that was recorded but not measured this time is kept;
* an entry is removed only when the run found it stale (``prune``), and only if it is still there;
* the file names the hash seed its values were measured under: a run that measured under another seed than the
  file's (``--alloc-hash-seed``) writes its own, since it measured every entry it records under that one.

An update run merges onto the file as it is when the run writes (read again under the writers' lock), not onto
the copy it read at its start: so entries written meanwhile by another run are kept, on an entry both measured the
tolerance rule compares this run's values with the other run's, and the changes counted are those this write makes.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..judging.metrics import METRICS
from ..judging.tolerance import Tolerance
from ..measuring.hashseed import DEFAULT_SEED
from .store import BudgetFile, EntryKey, Values

__all__ = ["Change", "MergeResult", "merge"]


class Change(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class MergeResult:
    budgets: BudgetFile
    changes: dict[EntryKey, Change] = field(default_factory=dict)
    pruned: list[EntryKey] = field(default_factory=list)  # the stale entries removed, sorted
    seed_changed: bool = False  # the run measured under another hash seed than the file names

    def count(self, change: Change) -> int:
        return sum(1 for value in self.changes.values() if value is change)

    @property
    def modified(self) -> bool:
        changed = any(change is not Change.UNCHANGED for change in self.changes.values())
        return self.seed_changed or bool(self.pruned) or changed


def merge_entry(
    recorded: Mapping[str, int] | None,
    measured: Mapping[str, int],
    tolerances: Mapping[str, Tolerance],
) -> tuple[Values, Change]:
    """The entry to write for one measurement, and what happened to it."""
    if recorded is None:
        return dict(measured), Change.CREATED
    values = dict(recorded)
    change = Change.UNCHANGED
    for metric, value in measured.items():
        old = recorded.get(metric)
        tolerance = tolerances.get(metric) or METRICS[metric].default_tolerance
        if old is None or tolerance.moved(old, value):
            values[metric] = value
            change = Change.UPDATED
    return values, change


def merge(
    budgets: BudgetFile,
    profile: str,
    measured: Mapping[EntryKey, Mapping[str, int]],
    tolerances: Mapping[EntryKey, Mapping[str, Tolerance]],
    prune: Collection[EntryKey] = (),
    hash_seed: int | None = None,
) -> MergeResult:
    """Fold ``measured`` (one run, one profile) into ``budgets`` and remove the entries of ``prune`` that
    ``budgets`` holds and ``measured`` does not; the input is not modified.

    ``hash_seed`` is the seed this run measured under (``None``: a random one, which no later run could repeat,
    so the file's stays).  A file that names none was measured under :data:`DEFAULT_SEED`: writing that seed into
    it is no change of its own, only one that the next write carries.
    """
    if not measured and not prune:
        return MergeResult(budgets)
    profiles = {name: dict(entries) for name, entries in budgets.profiles.items()}
    entries = profiles.setdefault(profile, {})
    before = DEFAULT_SEED if budgets.hash_seed is None else budgets.hash_seed
    seed = budgets.hash_seed if hash_seed is None else hash_seed
    result = MergeResult(BudgetFile(profiles, seed), seed_changed=hash_seed is not None and hash_seed != before)
    for key, values in measured.items():
        if not values:
            continue  # nothing measured: an empty entry would make the file unreadable
        new, change = merge_entry(entries.get(key), values, tolerances.get(key, {}))
        entries[key] = new
        result.changes[key] = change
    for key in sorted(prune, key=lambda k: (k[0], k[1] or "")):
        if key in entries and key not in measured:
            del entries[key]
            result.pruned.append(key)
    return result
