"""Unit tests of :mod:`pytest_allocbudget.budgets.filelock`: the writers' lock of a budget file.

Two holders in one process are enough to see the lock work: ``flock`` (and ``msvcrt.locking``) locks belong to the
open file, not to the process, so a second ``open`` of the same file waits for the first.  Other processes are in
tests/integration/test_writers.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_allocbudget.budgets.filelock import LockTimeout, exclusive, lock_path


def test_lock_path_is_a_hidden_file_beside_the_budget_file(tmp_path: Path) -> None:
    assert lock_path(tmp_path / "budgets" / "alloc.yaml") == tmp_path / "budgets" / ".alloc.yaml.lock"


def test_a_second_holder_times_out_naming_the_lock(tmp_path: Path) -> None:
    path = tmp_path / ".allocbudget.yaml.lock"
    waits: list[None] = []
    with exclusive(path, 0), pytest.raises(LockTimeout) as info, exclusive(path, 0.05, lambda: waits.append(None)):
        pytest.fail("the lock was taken twice")
    assert info.value.path == path
    assert info.value.timeout == 0.05
    assert str(info.value) == f"{path} is still locked by another process after 0.05 s"
    assert waits == [None]  # told once that it waits, however many attempts it made


def test_no_wait_with_a_timeout_of_zero(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    waits: list[None] = []
    with exclusive(path, 0), pytest.raises(LockTimeout), exclusive(path, 0, lambda: waits.append(None)):
        pytest.fail("the lock was taken twice")
    assert waits == []


def test_the_lock_is_free_again_after_the_block_even_when_it_raised(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with exclusive(path, 0):
        pass
    with pytest.raises(KeyError), exclusive(path, 0):
        raise KeyError("x")
    waits: list[None] = []
    with exclusive(path, 0, lambda: waits.append(None)):
        pass
    assert waits == []


def test_the_lock_file_is_created_empty_and_removed_by_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with exclusive(path, 0):
        assert path.read_bytes() == b""
    assert not path.exists() or sys.platform == "win32"  # Windows cannot remove an open file: it stays there


@pytest.mark.skipif(sys.platform == "win32", reason="the lock file is removed on POSIX only")
def test_a_writer_that_waited_on_a_removed_lock_file_locks_the_new_one(tmp_path: Path) -> None:
    # The waiter opened the lock file while its holder held it; the holder then removed it and let go, and a
    # newcomer made a new one and locked that.  Once the waiter holds the removed file, it must notice that the name
    # leads elsewhere, or it and the newcomer would both think they hold the lock.
    import fcntl

    path = tmp_path / "lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(holder, fcntl.LOCK_EX)
    newcomer: list[int] = []

    def holder_leaves_and_a_newcomer_comes() -> None:
        path.unlink()
        fcntl.flock(holder, fcntl.LOCK_UN)
        newcomer.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o666))
        fcntl.flock(newcomer[0], fcntl.LOCK_EX)

    try:
        with pytest.raises(LockTimeout), exclusive(path, 0.05, holder_leaves_and_a_newcomer_comes):
            pytest.fail("locked the removed file while the newcomer held the one the name leads to")
        assert newcomer
        os.close(newcomer.pop())  # the newcomer is done: the waiter now gets the file the name leads to
        with exclusive(path, 0):
            assert path.exists()
    finally:
        os.close(holder)
        for fd in newcomer:
            os.close(fd)


def test_a_lock_file_that_cannot_be_created_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError), exclusive(tmp_path / "missing" / "lock", 0):
        pytest.fail("locked a file in a directory that does not exist")
