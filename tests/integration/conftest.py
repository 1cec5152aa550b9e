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

PROFILE = (
    f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    f"{'t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''}"
)

ReadBudgets = Callable[..., "dict[str, Any]"]


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
