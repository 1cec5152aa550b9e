"""The native allocation counter, as a probe.  No pytest in here.

The C extension ``_counter`` is optional: it is built when the package is installed from source with a C compiler
on CPython with a GIL.  :func:`unavailable_reason` says why it cannot be used here, so the plugin can say so once
and measure with tracemalloc instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sysconfig
from collections.abc import Sequence
from types import ModuleType

from .measure import LineStat

__all__ = ["CounterProbe", "native", "unavailable_reason"]


def _load() -> tuple[ModuleType | None, str | None]:
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, "this is a free-threaded Python build, which the allocation counter does not support"
    if importlib.util.find_spec(f"{__package__}._counter") is None:
        return None, (
            "the allocation counter extension was not built when the package was installed "
            "(building it needs a C compiler and CPython's headers)"
        )
    try:
        module = importlib.import_module(f"{__package__}._counter")
    except ImportError as error:
        return None, f"the allocation counter extension failed to load ({error})"
    return module, None


_module, _reason = _load()


def native() -> ModuleType | None:
    """The extension module, or ``None`` where it cannot be used."""
    return _module


def unavailable_reason() -> str | None:
    """``None`` when the counter can be used, else a sentence saying why not."""
    return _reason


class CounterProbe:
    """``allocations``, ``allocated``, ``peak`` and ``retained`` from the allocator hook.

    It must be the last probe started and the first one finished: started after tracemalloc, it sees the program's
    allocations and not tracemalloc's bookkeeping, and it has to be unhooked before anything hooked below it is.
    """

    def __init__(self, all_threads: bool = False) -> None:
        if _module is None:
            raise RuntimeError(_reason)
        self._counter = _module
        self._all_threads = all_threads

    def start(self) -> None:
        self._counter.start(all_threads=self._all_threads)

    def pause(self) -> None:
        self._counter.pause()

    def finish(self) -> dict[str, int]:
        allocations, allocated, live, peak, exact = self._counter.stop()
        if not exact:
            raise RuntimeError("the allocation counter ran out of memory for its table of live blocks")
        return {"allocations": allocations, "allocated": allocated, "peak": peak, "retained": live}

    def explain(self) -> Sequence[LineStat]:
        return ()

    def stop(self) -> None:
        if self._counter.running():
            self._counter.stop()
