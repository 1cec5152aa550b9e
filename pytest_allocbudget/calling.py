"""Calling a test function inside a measured window, and nothing else around it.  No pytest in here."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from typing import Any, Callable

from .measure import Region

__all__ = ["as_positional", "measured_call", "prime_frame"]


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
        positional = as_positional(function, args, kwargs)
        if positional is not None:
            with region:
                result = function(*positional)  # an existing tuple: nothing is built inside the region
        else:
            with region:
                result = function(*args, **kwargs)
        after(args, kwargs)
        return result

    return measured


def as_positional(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...] | None:
    """The call's arguments as one positional tuple, where the function takes exactly those parameters.

    pytest passes fixtures by keyword; a keyword call builds a tuple of names and an argument array, two or three
    allocations that would land inside the window of every test that takes a fixture.  Built here, before it.
    A test method is bound, so its first parameter (``self``) is already supplied.
    """
    bound = 1 if inspect.ismethod(function) else 0
    plain = function.__func__ if bound else function  # type: ignore[attr-defined]
    code = getattr(plain, "__code__", None)
    if not inspect.isfunction(plain) or code is None or code.co_kwonlyargcount:
        return None
    names = code.co_varnames[bound + len(args) : code.co_argcount]
    if len(names) != len(kwargs) or any(name not in kwargs for name in names):
        return None
    return (*args, *(kwargs[name] for name in names))


#: Python 3.9 and 3.10 keep a function's frame on its code object after the first call, for reuse.
_KEEPS_FIRST_FRAME = sys.version_info < (3, 11)
_CO_VARKEYWORDS = 0x08


def prime_frame(function: Callable[..., Any]) -> None:
    """Make the interpreter allocate ``function``'s reusable frame now, outside the measured window, on 3.9/3.10.

    There the frame is created before the arguments are bound, and kept when the call ends, even when binding
    fails; so a call with an unknown keyword argument creates the frame, raises TypeError, and runs no line of the
    body.  A function taking ``**kwargs`` would accept the keyword and run, so it is left alone.
    """
    plain = function.__func__ if inspect.ismethod(function) else function  # a test method is bound
    code = getattr(plain, "__code__", None)
    if not inspect.isfunction(plain) or code is None or code.co_flags & _CO_VARKEYWORDS:
        return
    with contextlib.suppress(TypeError):
        function(__allocbudget_prime_frame__=None)
