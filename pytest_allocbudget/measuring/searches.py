"""Hypothesis tests: a budget of a ``@given`` test is the whole search, and the search is made the same in every run.

A ``@given`` test calls its body once per generated example, and Hypothesis does its own work between them
(generating, shrinking, saving to its example database), all inside the measured call.  Left as it is, that search
differs from run to run: examples are drawn from a fresh random seed each time, and the examples saved in the
``.hypothesis/`` directory are replayed first, so a fresh checkout (no directory) measured 47 % more allocations
than a warm one.  So a budgeted ``@given`` test is measured with Hypothesis's own public means of repeating a
search, as ``@seed`` sets it: one seed, derived from the test's node id (so that it stays when tests are added or
reordered), and no example database.  Each run then generates the same examples, in a fresh checkout as in a warm
one.

A test that already gives a seed (``@seed``) or asks for a derandomized search keeps its own.  The test keeps
running as a Hypothesis test in every other respect; it just no longer explores new examples from run to run, which
is what a budget needs and what exploration does not.  Opt a test out of its budget (``alloc_budget(False)``) to
keep it exploring.

Hypothesis is never imported here: a test is a Hypothesis test only if Hypothesis has already wrapped it.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

__all__ = ["fix_search", "is_search"]


def is_search(function: object) -> bool:
    """Whether ``function`` is a test wrapped by Hypothesis's ``@given``."""
    return (
        "hypothesis" in sys.modules and getattr(getattr(function, "hypothesis", None), "inner_test", None) is not None
    )


#: Set on a function whose seed this module gave, so that the next parametrization of the same function (one
#: function object, several tests) gets its own seed instead of being taken for a test that chose one.
_OURS = "_allocbudget_search_seed"


def fix_search(function: Any, nodeid: str) -> bool:
    """Give a ``@given`` test a fixed seed and no example database, unless it has a seed of its own; return whether
    its search was changed."""
    function = getattr(function, "__func__", function)  # a method: Hypothesis reads the function's attributes
    if not is_search(function):
        return False
    ours = getattr(function, _OURS, None) is not None
    if not ours and getattr(function, "_hypothesis_internal_use_seed", None) is not None:
        return False  # @seed(...) given by the test
    current = getattr(function, "_hypothesis_internal_use_settings", None)
    if not ours and current is not None and getattr(current, "derandomize", False):
        return False  # derandomize=True: already the same search in every run (with the database the user chose)
    from hypothesis import seed

    number = zlib.crc32(nodeid.encode("utf-8"))
    seed(number)(function)  # sets the seed and turns the database off, as @seed does
    setattr(function, _OURS, number)
    return True
