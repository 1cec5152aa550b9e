"""Stale entries: budgets whose tests no longer exist, or no longer measure what was recorded.  Pure.

Only a full run can tell: every collected test selected (no ``-k``, ``-m``, ``--deselect`` or node-id arguments)
and run to the end, with no crashed worker.  Even then only what the run could see is judged: an entry is stale
when its test file was collected (or no longer exists) but the test is not among the budgeted tests collected,
or when its test passed in this run without measuring that region.  Entries of files outside the run's paths, and
of other Python profiles, are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from .store import BudgetFile, EntryKey

__all__ = ["stale_entries"]


def stale_entries(
    budgets: BudgetFile,
    profile: str,
    budgeted: Collection[str],
    files: Collection[str],
    passed_keys: Mapping[str, Collection[str | None]],
    exists: Callable[[str], bool],
) -> list[EntryKey]:
    """The stale entries of ``profile``, sorted.

    ``budgeted``: node ids of the budgeted tests collected; ``files``: the test files collected; ``passed_keys``:
    for each budgeted test that passed, what it measured (``None`` for the whole test, else region names);
    ``exists``: whether a test file (relative to the rootdir) still exists.
    """
    stale = []
    for key in budgets.profile(profile):
        nodeid, region = key
        file = nodeid.split("::", 1)[0]
        if nodeid not in budgeted:
            if file in files or not exists(file):
                stale.append(key)
        elif nodeid in passed_keys and region not in passed_keys[nodeid]:
            stale.append(key)
    return sorted(stale, key=lambda k: (k[0], k[1] or ""))
