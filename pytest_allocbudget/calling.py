"""Calling a test function inside a measured window, and nothing else around it.  No pytest in here."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from typing import Any, Callable

from .measure import Region

__all__ = ["measured_call", "prime_frame"]


def measured_call(
    function: Callable[..., Any],
    region: Region,
    warmup: bool,
    after: Callable[[tuple[Any, ...], dict[str, Any]], None],
    before: Callable[[], None] | None = None,
) -> Callable[..., Any]:
    """``function``, measured by ``region`` when called; with ``warmup``, called once unmeasured first.

    ``after`` runs once the region has closed, with the call's arguments (to re-run the test for an explanation).
    """

    @functools.wraps(function)
    def measured(*args: Any, **kwargs: Any) -> Any:
        if warmup:
            function(*args, **kwargs)
        elif _KEEPS_FIRST_FRAME:
            prime_frame(function)
        if before is not None:
            before()
        if args or kwargs:
            with region:
                result = function(*args, **kwargs)
        else:
            with region:
                result = function()  # no argument tuple or dict is built inside the region
        after(args, kwargs)
        return result

    return measured


#: Python 3.9 and 3.10 keep a function's frame on its code object after the first call, for reuse.
_KEEPS_FIRST_FRAME = sys.version_info < (3, 11)
_CO_VARKEYWORDS = 0x08


def prime_frame(function: Callable[..., Any]) -> None:
    """Make the interpreter allocate ``function``'s reusable frame now, outside the measured window, on 3.9/3.10.

    There the frame is created before the arguments are bound, and kept when the call ends, even when binding
    fails; so a call with an unknown keyword argument creates the frame, raises TypeError, and runs no line of the
    body.  A function taking ``**kwargs`` would accept the keyword and run, so it is left alone.
    """
    code = getattr(function, "__code__", None)
    if not inspect.isfunction(function) or code is None or code.co_flags & _CO_VARKEYWORDS:
        return
    with contextlib.suppress(TypeError):
        function(__allocbudget_prime_frame__=None)
