"""Helpers shared by the integration tests: the profile name and reading the budget file an inner session wrote.

The profile is computed here independently of the plugin, so the tests also pin down its naming scheme.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from pytest_allocbudget.budgets import store
from pytest_allocbudget.measuring.counter import unavailable_reason

PROFILE = (
    f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    f"{'t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''}"
)

ReadBudgets = Callable[..., "dict[str, Any]"]

#: Why the allocation counter cannot run here, or ``None`` when it can (then a default run records four metrics).
COUNTER_MISSING = unavailable_reason()


@pytest.fixture
def read_budgets(tester: pytest.Pytester) -> ReadBudgets:
    """``read_budgets()`` -> the entries of this interpreter's profile in ``allocbudget.yaml`` at the rootdir.

    ``read_budgets(path, profile=None)`` reads another file (relative to the rootdir); ``profile=None`` returns
    the whole ``profiles`` mapping.
    """

    def read(path: str | Path = "allocbudget.yaml", profile: str | None = PROFILE) -> dict[str, Any]:
        data = yaml.safe_load((tester.path / path).read_text(encoding="utf-8"))
        assert data["version"] == 1
        profiles: dict[str, Any] = data["profiles"] or {}
        if profile is None:
            return profiles
        return profiles.get(profile) or {}

    return read


@pytest.fixture
def profile() -> str:
    """This interpreter's budget profile, such as ``cpython-3.11``."""
    return PROFILE


@pytest.fixture
def recorded_metrics() -> tuple[str, ...]:
    """The metrics a default run (``--alloc-engine=auto``) records per entry, sorted as the budget file writes them:
    all four with the allocation counter, ``peak`` and ``retained`` without it."""
    if COUNTER_MISSING is None:
        return ("allocated", "allocations", "peak", "retained")
    return ("peak", "retained")


SetBudget = Callable[..., None]


@pytest.fixture
def set_budget(tester: pytest.Pytester) -> SetBudget:
    """``set_budget(nodeid, region=None, **values)`` changes the named metrics of one recorded entry of this
    interpreter's profile in ``allocbudget.yaml``, by key, and writes the file back in the plugin's own layout."""

    def set_values(nodeid: str, region: str | None = None, **values: int) -> None:
        path = tester.path / "allocbudget.yaml"
        budgets = store.loads(path.read_text(encoding="utf-8"), str(path))
        entry = budgets.profiles[PROFILE][(nodeid, region)]
        assert set(values) <= set(entry), f"{sorted(values)} are not all recorded in {sorted(entry)}"
        entry.update(values)
        path.write_text(store.dump(budgets), encoding="utf-8")

    return set_values


AddEntry = Callable[..., None]


@pytest.fixture
def add_entry(tester: pytest.Pytester) -> AddEntry:
    """``add_entry(nodeid, region=None, profile=<this interpreter's>, **values)`` adds (or replaces) one entry in
    ``allocbudget.yaml`` (created if missing), written back in the plugin's own layout: an entry of a test that does
    not exist, for the stale-entry tests.  Without values it records ``peak=1000, retained=0``."""

    def add(nodeid: str, region: str | None = None, profile: str = PROFILE, **values: int) -> None:
        path = tester.path / "allocbudget.yaml"
        budgets = store.loads(path.read_text(encoding="utf-8"), str(path)) if path.exists() else store.BudgetFile()
        budgets.profiles.setdefault(profile, {})[(nodeid, region)] = dict(values or {"peak": 1000, "retained": 0})
        path.write_text(store.dump(budgets), encoding="utf-8")

    return add


@pytest.fixture
def without_counter(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    """Inner sessions in a subprocess where importing the extension fails, as on a machine without a compiler."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text('import sys\nsys.modules["pytest_allocbudget.measuring._counter"] = None\n')
    monkeypatch.setenv("PYTHONPATH", str(site))
    return tester
