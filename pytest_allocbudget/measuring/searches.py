"""Hypothesis tests: a budget of a ``@given`` test is the whole search, and the search is made the same in every run.

A ``@given`` test calls its body once per generated example, and Hypothesis does its own work between them
(generating, shrinking, saving to its example database), all inside the measured call.  Left as it is, that search
differs from run to run: examples are drawn from a fresh random seed each time, and the examples saved in the
``.hypothesis/`` directory are replayed first, so a fresh checkout (no directory) measured 47 % more allocations
than a warm one.  So a budgeted ``@given`` test is measured with Hypothesis's own public means of repeating a
search, as ``@seed`` sets it: one seed, derived from the test's node id (so that it stays when tests are added or
reordered), and no example database.  Each run then generates the same examples, in a fresh checkout as in a warm
one.

A test that already gives a seed (``@seed``) keeps its own. A derandomized search (``derandomize=True``) is seeded
all the same: that setting mostly comes from a settings profile, not from the test, and Hypothesis loads its own
``ci`` profile (derandomized) whenever a ``CI`` variable is set, so a budget recorded on a laptop would have
measured another search than the check in CI. A seed overrides ``derandomize`` in Hypothesis, so the search is the
same under every profile. The deadline is turned off for the same reason: timing each example against it is work of
its own, which the ``ci`` profile does not do and which depends on the load on the machine. The test keeps running
as a Hypothesis test in every other respect; it just no longer explores new examples from run to run, which is what
a budget needs and what exploration does not. Opt a test out of its budget (``alloc_budget(False)``) to keep it
exploring.

Hypothesis is never imported here: a test is a Hypothesis test only if Hypothesis has already wrapped it.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any, Callable

__all__ = ["fix_search", "hold_constants", "is_search", "release_constants"]


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
    hold_constants()  # with its own seed too: the project's constants change a search whatever its seed
    ours = getattr(function, _OURS, None) is not None
    if not ours and getattr(function, "_hypothesis_internal_use_seed", None) is not None:
        return False  # @seed(...) given by the test
    from hypothesis import seed, settings

    number = zlib.crc32(nodeid.encode("utf-8"))
    seed(number)(function)  # sets the seed and turns the database off, as @seed does
    # No deadline: Hypothesis times each example against it, and the timing does work of its own (a list search
    # of 100 examples: 668,661 allocations with the default 200 ms, 548,991 without), so the count would differ
    # between the default profile and Hypothesis's "ci" one (no deadline), and with the load on the machine.
    function._hypothesis_internal_use_settings = settings(function._hypothesis_internal_use_settings, deadline=None)
    setattr(function, _OURS, number)
    return True


# Hypothesis's own function that gives a search the constants of the user's modules, while a budgeted search runs
# in its place; None until one has.
_scan: Callable[[], Any] | None = None
#: Hypothesis's class of a set of constants, to give a held search an empty one.
_constants: Callable[[], Any] | None = None
_holding = False


def _no_local_constants_while_held() -> Any:
    assert _scan is not None and _constants is not None  # installed together
    return _constants() if _holding else _scan()


def hold_constants() -> None:
    """Until :func:`release_constants`, searches draw no constants from the user's own modules.

    Recent versions of Hypothesis draw some examples from the constants found in the project's own modules (the
    "local constants"). It gathers them on a search's first example that asks for one, scanning every module
    imported since it last looked, from a cache in ``.hypothesis/constants`` or by parsing the source. Both the scan
    and the examples it leads to depend on what else happened in the process and in the checkout: a search measured
    695,432 allocations in a fresh checkout (no cache), 564,065 right after a test that imported one more module of
    the project, and 549,651 with nothing new to scan. They also change whenever a constant is edited in any module
    of the project, whether the test uses it or not. So a budgeted search sees none: held, the same search measured
    531,740 to 531,745 in every order, fresh checkout or warm (``benchmarks/hypothesis_search.py``, against 549,120
    to 706,423 with ``--unheld``). Hypothesis's cache of drawable constants is emptied both ways, so that neither
    kind of search draws from the other's.

    This replaces Hypothesis's internal function for the process; a version without it has nothing to hold.
    """
    global _scan, _constants, _holding
    providers = sys.modules.get("hypothesis.internal.conjecture.providers")
    if _scan is None:
        scan = getattr(providers, "_get_local_constants", None)
        constants = getattr(sys.modules.get("hypothesis.internal.constants_ast"), "Constants", None)
        if not callable(scan) or not callable(constants):
            return  # a Hypothesis without local constants, or with another design of them: nothing known to hold
        _scan, _constants = scan, constants
        setattr(providers, "_get_local_constants", _no_local_constants_while_held)  # noqa: B010 - a private name
    if not _holding:
        _holding = True
        _forget_drawable(providers)


def release_constants() -> None:
    """Searches draw the project's constants again, as Hypothesis does: a test not budgeted keeps its defaults."""
    global _holding
    if _holding:
        _holding = False
        _forget_drawable(sys.modules.get("hypothesis.internal.conjecture.providers"))


def _forget_drawable(providers: Any) -> None:
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if cache is not None:
        cache.clear()
