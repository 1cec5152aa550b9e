"""The freezer's bookkeeping of a heap the project froze itself, on the real collector of this process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pytest_allocbudget.measuring.freezing import Freezer


@pytest.fixture
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen, whatever the interpreter or the test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("thawed")
def test_a_heap_the_project_froze_is_frozen_again_by_restore() -> None:
    freezer = Freezer()
    gc.freeze()  # the project's own, after the plugin started and before its first freeze
    freezer.freeze()
    freezer.release()
    assert gc.get_freeze_count() == 0  # unfrozen for the end-of-session hooks
    freezer.restore()
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("frozen_at_start", [False, True], ids=["nothing", "some"])
@pytest.mark.usefixtures("thawed")
def test_restore_freezes_nothing_when_only_the_plugin_froze(frozen_at_start: bool) -> None:
    """What was frozen before the plugin started (CPython 3.12 starts so) is not the project freezing."""
    if frozen_at_start:
        gc.freeze()
    freezer = Freezer()
    freezer.freeze()
    freezer.release()
    freezer.restore()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("thawed")
def test_restore_before_release_leaves_the_measuring_freeze_alone() -> None:
    freezer = Freezer()
    gc.freeze()
    freezer.freeze()
    freezer.restore()  # still measuring: release has not run, so restore must not take its turn now
    assert freezer.frozen
    freezer.release()
    freezer.restore()
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("thawed")
def test_a_sweep_comes_when_the_objects_frozen_since_reach_the_heap_left_by_the_last() -> None:
    freezer = Freezer()
    freezer.freeze()
    heap = freezer.frozen_at_sweep
    assert heap == gc.get_freeze_count() > 0
    kept = [[] for _ in range(heap // 2)]
    freezer.after_test()
    assert freezer.sweeps == 0  # half the heap is not yet the whole of it
    assert gc.get_objects() == []  # frozen all the same
    kept += [[] for _ in range(heap // 2 + 10)]
    freezer.after_test()
    assert freezer.sweeps == 1
    assert freezer.frozen_since == 0
    assert freezer.frozen_at_sweep == gc.get_freeze_count() >= heap + len(kept)
    freezer.release()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("thawed")
def test_a_cycle_dropped_while_frozen_waits_for_the_sweep() -> None:
    freezer = Freezer()
    freezer.freeze()
    holder = [_Cycle()]
    freed: list[int] = []
    weakref.finalize(holder[0], freed.append, 1)
    freezer.after_test()  # frozen while alive
    holder.clear()  # garbage now, and only the collector can free it
    gc.collect()
    assert freed == []
    freezer.frozen_since = freezer.frozen_at_sweep  # as if the run had made a heap's worth of objects
    freezer.after_test()
    assert freed == [1]
    freezer.release()
