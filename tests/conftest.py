"""Shared test setup.

The outer session runs with the plugin disabled (``-p no:allocbudget`` in pyproject.toml): tracemalloc and the
collector are process-wide, and the inner sessions that pytester runs are the ones under test.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from pytest_allocbudget.wiring.ci import CI_VARIABLES

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

INI = """\
[pytest]
addopts = -p no:cacheprovider -p no:randomly -p no:xdist -p no:anyio -p no:asyncio
"""


@pytest.fixture
def tester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester with a fixed ini, so every inner session behaves the same whatever the outer one does."""
    pytester.makefile(".ini", pytest=INI)
    # The outer run may itself be in CI; inner sessions must not see it unless a test sets it.
    for name in ("PYTEST_ADDOPTS", "GITHUB_STEP_SUMMARY", *CI_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    # Inner sessions hash under the seed budgets are measured with, so that one run as a command is not started
    # again (tests/integration/test_hash_seed.py unsets it), and one run in this process does not warn of it.
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    return pytester
