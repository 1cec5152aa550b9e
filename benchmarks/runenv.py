"""The environment of the pytest runs that the benchmarks start, shared by the scripts in this directory.

The variables that make the plugin detect CI (strict mode, refused updates) and pytest's own (extra options and
plugins, xdist's worker count) are left out, so that the runs measure the same thing on any machine.
"""

from __future__ import annotations

import os

from pytest_allocbudget.wiring.ci import CI_VARIABLES

__all__ = ["UNSET", "clean_environment"]

UNSET = (*CI_VARIABLES, "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_AUTO_NUM_WORKERS")


def clean_environment() -> dict[str, str]:
    """This process's environment without the variables in ``UNSET``."""
    return {name: value for name, value in os.environ.items() if name not in UNSET}
