"""pytest-allocbudget: allocation budgets for pytest tests, recorded in a YAML file and enforced on every run.

pytest imports this package for every run in which the plugin is installed, budgeted or not, so the public names
below are imported on first use (PEP 562) rather than here: a suite with no budgeted test should not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .judging.tolerance import Tolerance
    from .judging.units import parse_size
    from .measuring.measure import LineStat, Measurement, Region
    from .wiring.regions import AllocBudget, RegionResult

__all__ = [
    "AllocBudget",
    "LineStat",
    "Measurement",
    "Region",
    "RegionResult",
    "Tolerance",
    "parse_size",
]

__version__ = "0.1.0"

_HOMES = {
    "AllocBudget": "wiring.regions",
    "LineStat": "measuring.measure",
    "Measurement": "measuring.measure",
    "Region": "measuring.measure",
    "RegionResult": "wiring.regions",
    "Tolerance": "judging.tolerance",
    "parse_size": "judging.units",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
