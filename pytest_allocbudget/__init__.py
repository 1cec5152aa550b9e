"""pytest-allocbudget: allocation budgets for pytest tests, recorded in a YAML file and enforced on every run."""

from __future__ import annotations

from .measure import LineStat, Measurement, Region
from .regions import AllocBudget, RegionResult
from .tolerance import Tolerance
from .units import parse_size

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
