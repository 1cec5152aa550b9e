"""Continuous integration: noticing that we run in CI.  No pytest in here; GitHub's formats are in :mod:`github`.

In CI, budgets are enforced, not recorded: a budget recorded on a CI machine would be accepted without review,
so ``--alloc-update`` is refused there unless explicitly asked for, and strict mode is on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["CI_VARIABLES", "detect_ci"]

#: Environment variables that CI services set; the first one set (and not to a false value) names the service.
CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "TF_BUILD",
    "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER",
    "APPVEYOR",
    "DRONE",
    "CODEBUILD_BUILD_ID",
)
_FALSE = {"", "0", "false", "no", "off"}


def detect_ci(environ: Mapping[str, str] = os.environ) -> str | None:
    """The name of the variable that says this is a CI run, or ``None``; ``CI=false`` does not count."""
    for name in CI_VARIABLES:
        if environ.get(name, "").strip().lower() not in _FALSE:
            return name
    return None
