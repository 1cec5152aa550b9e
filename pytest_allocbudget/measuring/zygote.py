"""A process kept from the start of the session, to run a test again from there.  No pytest in here.

Some costs grow with what earlier tests did, and a second or third call pays them too, since it starts after the
same earlier tests: a registry that every test adds to and every later lookup walks, a cache probed name by name
(attrs' generated code in ``linecache``).  Such a test is over its budget in one order and within it in another,
while a regression in its own code is over in every order.  So, once collection is done and before the first test
runs, the session forks a process that does nothing but wait (the zygote); asked for a test, it forks a child of
itself that sets the test up and calls it from the state the session had before any test ran.  A regression is
still there in that call; what earlier tests left is not.

The zygote is a copy of the session at its start, shared copy-on-write; it holds no lock, touches no file, and ends
when the session closes its pipe, or dies.  Only a test over its budget on three calls asks it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import select
import signal
import struct
from typing import Callable, Generic, TypeVar, cast

from .forked import ForkFailed, available, fork, run_forked

__all__ = ["Zygote", "start"]

T = TypeVar("T")
_LENGTH = struct.Struct("!I")
#: The session's ends of the pipes of every zygote it keeps.  A zygote forked while another is alive would hold
#: the other's ends too, and the other would then never see its pipe close: each zygote closes them first.
_HELD: set[int] = set()


class Zygote(Generic[T]):
    """The session's handle on its zygote: :meth:`ask` runs one job there, in a child of it."""

    def __init__(self, pid: int, requests: int, answers: int) -> None:
        self.pid = pid
        self.requests = requests
        self.answers = answers
        self.alive = True
        self.planned: set[str] = set()  # keys given to plan() whose answers have not been taken yet
        self.early: dict[str, T | str] = {}  # answers read while waiting for another key's

    def plan(self, keys: list[str]) -> None:
        """Have the zygote run the job for each of ``keys``, in that order, one after the other, starting now and
        while the session goes on; :meth:`take` gets each answer.  The keys go as one message, which the zygote
        reads whole before it answers any: a session that sent them one by one could block on a full pipe while
        the zygote blocked on the answers the session had not read yet."""
        if self.alive and keys:
            try:
                _send(self.requests, list(keys))
            except OSError:
                self.close()
                return
            self.planned.update(keys)

    def take(self, key: str, timeout: float) -> T | str | None:
        """The planned job's result for ``key``, or why there is none; ``None`` when ``key`` was not planned, or
        was taken before (the caller then asks for it)."""
        if key not in self.planned:
            return None
        self.planned.discard(key)
        if key in self.early:
            return self.early.pop(key)
        while self.alive:
            try:
                message = _receive(self.answers, timeout + 5.0)
            except (OSError, EOFError, pickle.UnpicklingError, TimeoutError) as error:
                self.close()
                return (
                    f"the process kept from the start of the session did not answer ({error or type(error).__name__})"
                )
            answered, answer = cast("tuple[str, T | str]", message)
            if answered == key:
                return answer
            self.early[answered] = answer
        return "the process kept from the start of the session has ended"

    def ask(self, key: str, timeout: float) -> T | str:
        """The job's result for ``key``, or why there is none (a sentence ending)."""
        if not self.alive:
            return "the process kept from the start of the session has ended"
        try:
            _send(self.requests, key)
            answer: T | str = _receive(self.answers, timeout + 5.0)  # type: ignore[assignment]
        except (OSError, EOFError, pickle.UnpicklingError, TimeoutError) as error:
            self.close()
            return f"the process kept from the start of the session did not answer ({error or type(error).__name__})"
        return answer

    def close(self) -> None:
        """End the zygote: it ends when its pipe closes."""
        if not self.alive:
            return
        self.alive = False
        if self.planned:  # still working through a plan nobody will take from: stop it rather than wait
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        for fd in (self.requests, self.answers):
            _HELD.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def start(job: Callable[[str], T], timeout: float) -> Zygote[T] | None:
    """Fork the zygote, which runs ``job(key)`` in a child of its own for each key asked; ``None`` where the
    platform cannot fork."""
    if not available():
        return None
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - the zygote; coverage does not follow it
        try:
            for fd in (requests_write, answers_read, *_HELD):
                with contextlib.suppress(OSError):
                    os.close(fd)
            _serve(requests_read, answers_write, job, timeout)
        finally:
            os._exit(0)
    os.close(requests_read)
    os.close(answers_write)
    _HELD.update((requests_write, answers_read))
    return Zygote(pid, requests_write, answers_read)


def _serve(requests: int, answers: int, job: Callable[[str], T], timeout: float) -> None:  # pragma: no cover
    while True:
        try:
            message = _receive(requests, None)
        except (EOFError, OSError):
            return  # the session closed the pipe, or ended
        if isinstance(message, list):  # a plan: every key's answer, in order, each sent with its key
            for key in message:
                try:
                    _send(answers, (key, _answer(job, key, timeout)))
                except OSError:
                    return
            continue
        assert isinstance(message, str)
        _send(answers, _answer(job, message, timeout))


def _answer(job: Callable[[str], T], key: str, timeout: float) -> T | str:  # pragma: no cover - in the zygote
    try:
        return run_forked(functools.partial(_quietly, job, key), timeout)
    except ForkFailed as failure:
        return f"the call from the start of the session {failure}"


def _quietly(job: Callable[[str], T], key: str) -> T:  # pragma: no cover - runs in the zygote's child
    """The job with its output sent nowhere: the file descriptors are the session's, which capture other tests'."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    return job(key)


def _send(fd: int, value: object) -> None:
    payload = pickle.dumps(value)
    data = _LENGTH.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


def _receive(fd: int, timeout: float | None) -> object:
    (length,) = _LENGTH.unpack(_read(fd, _LENGTH.size, timeout))
    return pickle.loads(_read(fd, length, timeout))  # our own process's data


def _read(fd: int, size: int, timeout: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if timeout is not None and not select.select([fd], [], [], timeout)[0]:
            raise TimeoutError(f"no answer in {timeout:g} s")
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError("the pipe was closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
