"""Calling a test function inside a measured window, and nothing else around it.  No pytest in here.

A coroutine test function (``async def``) gets a measuring coroutine function in its place, so that the plugin
that runs it (anyio, pytest-asyncio) still sees a coroutine function and runs it on its event loop; the window
then opens at the coroutine's first step and closes after its last, and the event loop's start-up, the runner's
task and the creation of the coroutine object all stay outside.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .measure import Measurement, Region

__all__ = ["Rerun", "as_positional", "measure_again", "measured_call", "prime_frame"]


@dataclass(frozen=True)
class Rerun:
    """How to call a test function once more with the arguments of its measured call: to confirm a budget
    failure (:func:`measure_again`) or to explain it.

    ``coroutine``: the function returns the test's coroutine, to be run to its end on a fresh asyncio event loop
    (the loop it ran on first is the runner's, and cannot be borrowed from a forked child).  ``impossible``: why the
    test cannot be run again at all; it is then not to be called.
    """

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    coroutine: bool = False
    impossible: str | None = None

    def call(self) -> object:
        return self.function(*self.args, **self.kwargs)


def measure_again(rerun: Rerun, region: Region) -> Measurement | str:
    """Call the test once more inside ``region``, as its measured call was made; its measurement, or why there is
    none (the call raised: a test called twice with the same fixture values may well)."""
    function = rerun.function
    positional = as_positional(function, rerun.args, rerun.kwargs)
    try:
        if not rerun.coroutine:
            if positional is not None:
                with region:
                    function(*positional)
            else:
                with region:
                    rerun.call()
        else:
            import asyncio  # only for an async test, which has imported it already

            async def run() -> None:
                coroutine: Any = function(*positional) if positional is not None else rerun.call()
                with region:
                    await coroutine

            loop = asyncio.new_event_loop()  # not asyncio.run, which would also clear the thread's current loop
            try:
                loop.run_until_complete(run())
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
    except Exception as error:
        return f"it raised {type(error).__name__}: {error}"
    if region.measurement is None:
        return "it measured nothing"
    return region.measurement


def measured_call(
    function: Callable[..., Any],
    region: Region,
    warmup: bool,
    after: Callable[[Rerun], None],
    before: Callable[[], None] | None = None,
) -> Callable[..., Any]:
    """``function``, measured by ``region`` when called; with ``warmup``, called once unmeasured first.

    ``after`` runs once the region has closed, with a way to call the test again (for an explanation).  A
    coroutine function gets a coroutine function: see the module's docstring.
    """
    if inspect.iscoroutinefunction(function):
        return _measured_coroutine(function, region, warmup, after, before)

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
        after(Rerun(function, args, kwargs))
        return result

    return measured


def _measured_coroutine(
    function: Callable[..., Any],
    region: Region,
    warmup: bool,
    after: Callable[[Rerun], None],
    before: Callable[[], None] | None,
) -> Callable[..., Any]:
    # A real ``async def`` (with functools.wraps for the name and the markers) is what the runners test for with
    # inspect.iscoroutinefunction, on every supported Python.
    @functools.wraps(function)
    async def measured(*args: Any, **kwargs: Any) -> Any:
        if warmup:
            await function(*args, **kwargs)  # to its end, on the same loop: a coroutine only created runs nothing
        elif _KEEPS_FIRST_FRAME:
            prime_frame(function)  # fails in binding, before a coroutine object exists
        if before is not None:
            before()
        loop = _running_loop()
        positional = as_positional(function, args, kwargs)
        # The coroutine object (and its frame) is made before the window, as the arguments are; awaiting it runs
        # the test's body, and whatever the loop runs while the body waits, inside the window.
        coroutine = function(*positional) if positional is not None else function(*args, **kwargs)
        with region:
            result = await coroutine
        impossible = (
            None
            if loop == "asyncio"
            else f"it ran on {loop or 'an event loop other than asyncio'}, and an async test is run again only on a "
            "fresh asyncio event loop"
        )
        after(Rerun(function, args, kwargs, coroutine=True, impossible=impossible))
        return result

    return measured


def _running_loop() -> str | None:
    """The async library running the current coroutine: ``"asyncio"``, else what sniffio says (``"trio"``), else
    None.  Neither asyncio nor sniffio is imported to find out: a loop of theirs would have imported them."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return "asyncio"
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        try:
            return str(sniffio.current_async_library())
        except Exception:  # sniffio.AsyncLibraryNotFoundError: a library it does not know
            return None
    return None


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
