"""Striped turns taken by the threads of a process.

A hot path whose work the database serialises anyway (statements that all lock one row) can take its
turn here first: while one thread's statement runs, the others of its process wait here rather than
inside the database, and the work that queued meanwhile can go in the next statement together.

Turns are only an optimisation: correctness never depends on them (other processes do not share
them, and the database's own locks still decide). Keys are striped over a fixed set of locks, so two
keys may share a turn.

They are per process on purpose. Turns shared by the processes of a host (a file lock per stripe, as
built until 2026-12-06) kept a second process's statement from waiting on the row in PostgreSQL,
but then every hand-over between processes waited for two interpreters' GILs on a busy host — the
holder's to let go, the next holder's to send — while the row stood free. Alternating the two every
second in one gunicorn (2 workers x 4 threads on 2 cores, bench/calls.py's set-up, four 20 s runs
twice), per-process turns admitted 2.5-6.6 % more calls per second; no turns at all, 8-16 % fewer.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """`stripes` turns among the threads of each process."""

    def __init__(self, stripes: int = 64) -> None:
        self.stripes = stripes
        self._pid: int | None = None
        self._locks: tuple[threading.Lock, ...] = ()
        self._setup = threading.Lock()

    def stripe(self, key: object) -> int:
        """The stripe of `key`: its text's CRC-32, the same from run to run (unlike Python's seeded hash)."""
        return zlib.crc32(str(key).encode()) % self.stripes

    @contextmanager
    def hold(self, key: object) -> Iterator[None]:
        """Wait for `key`'s turn among this process's threads and hold it."""
        if self._pid != os.getpid():
            self._start_process()
        with self._locks[self.stripe(key)]:
            yield

    def _start_process(self) -> None:
        """This process's own locks: a forked child must not share its parent's (a lock held by another
        thread at the fork would never be released in the child)."""
        with self._setup:
            if self._pid != os.getpid():
                self._locks = tuple(threading.Lock() for _ in range(self.stripes))
                self._pid = os.getpid()
