"""The writers' lock on a budget file: one update run writes it at a time, and no run waits forever.

Two update runs in one checkout (two terminals, two CI jobs sharing a workspace) would otherwise each rewrite the
whole file from what they read at their start, and the second would drop the first one's entries.  Each writer
therefore holds this lock while it reads the file again, merges its own changes and replaces it.

Why an operating-system lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) rather than a lock file
created with ``O_CREAT | O_EXCL``: the system releases the lock when its holder dies, however it dies (a crash,
``SIGKILL``, a CI job cancelled), so a lock can never be left behind.  A lock file made with ``O_EXCL`` outlives a
killed process, and every later run would then have to guess whether its owner is still alive.

Why a file of its own, ``.<name>.lock`` beside the budget file, rather than the budget file itself: the budget file
is replaced by a rename, so a lock on it would be held on a file that no longer has the name; a writer that opened
the new file would not see it (and Windows refuses to replace a locked file).  On POSIX the holder removes the lock
file before it lets go, so that an update run leaves nothing behind in the project's tree.  A writer that was
waiting on the removed file then holds a lock on a file that no longer has the name, so after every acquisition it
checks that the name still leads to the file it locked, and starts again with the new one otherwise.  Windows
cannot remove a file that is open, so there the empty lock file stays (it is created by update runs only).

Why ``flock`` rather than ``fcntl.lockf``: ``lockf`` locks belong to the process, so a second lock in the same
process succeeds instead of waiting, and closing any descriptor of the file drops them; ``flock`` locks belong to
the open file, like ``msvcrt.locking``'s.  On network file systems both kinds are only as good as the server's
support for them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

__all__ = ["LockTimeout", "exclusive", "lock_path"]

#: The longest pause between two attempts: the lock is free again as soon as the other writer has written, which
#: takes milliseconds, so polling costs little and a waiting writer goes on shortly after.
_MAX_PAUSE = 0.1


class LockTimeout(Exception):
    """Another process held the lock for the whole of the wait."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"{path} is still locked by another process after {timeout:g} s")
        self.path = path
        self.timeout = timeout


def lock_path(path: Path) -> Path:
    """The lock file of the budget file ``path``: ``.<name>.lock`` in the same directory."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the ``with`` block.

    When another process holds it, ``on_wait`` is called once, then the attempt is repeated until ``timeout``
    seconds have passed, when :class:`LockTimeout` is raised; ``timeout=0`` tries once.  Raises ``OSError`` when
    the lock file cannot be opened or created.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    waiting = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise LockTimeout(path, timeout)
                if not waiting and on_wait is not None:
                    on_wait()
                waiting = True
                time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
                pause = min(pause * 2, _MAX_PAUSE)
            if not _still_named(fd, path):
                _unlock(fd)
                continue  # the holder before us removed it: lock the file that has the name now
            try:
                yield
            finally:
                _release(fd, path)
            return
        finally:
            os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        # Locks the file's first byte (it need not exist); LK_NBLCK fails at once when another handle holds it.
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EDEADLK):  # the ways it says "held by another handle"
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _still_named(fd: int, path: Path) -> bool:
        return True  # the lock file is never removed here

    def _release(fd: int, path: Path) -> None:
        _unlock(fd)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _still_named(fd: int, path: Path) -> bool:
        try:
            named = os.stat(path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _release(fd: int, path: Path) -> None:
        # Removed while still locked: a writer that opens the name from now on makes a new file, and one already
        # waiting on this file finds, once it holds it, that the name has gone (see _still_named).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _unlock(fd)
