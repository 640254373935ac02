"""Striped turns taken by the threads of a process and by the processes of one host.

A hot path whose work the database serialises anyway (statements that all lock one row) can take its
turn here first: while one thread's statement runs, the others of its process — and of the other
processes on the host, such as gunicorn's workers — wait here rather than inside the database, and
the work that queued meanwhile can go in the next statement together. A session that waits for a row
lock costs PostgreSQL a lock wait, a wake-up and a recheck of the whole statement against the row's
new version; a process waiting here costs it nothing.

Turns are only an optimisation: correctness never depends on them (processes on other hosts do not
share them, and the database's own locks still decide). Keys are striped over a fixed set of locks,
so two keys may share a turn. Across processes a turn is an exclusive `flock(2)` on one file per
stripe in a directory of the user's own under the system's temporary directory (mode 0700, checked:
owned by this user, not a symbolic link, no access for others); where that cannot be had (no
`fcntl`, another user's or an unwritable directory) turns are taken within each process only, and
this is logged once. The lock is released by the kernel if its process dies.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: turns within each process only
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


class Turns:
    """`stripes` turns named `name` (one file per stripe, shared by every process of this user)."""

    def __init__(self, name: str, stripes: int = 64, directory: Path | None = None) -> None:
        self.name, self.stripes = name, stripes
        self._directory = directory
        self._pid: int | None = None
        self._threads: tuple[threading.Lock, ...] = ()
        self._files: list[int | None] = []
        self._shared = True
        self._checked: Path | None = None  # the directory, once made or found safe in this process
        self._setup = threading.Lock()

    def stripe(self, key: object) -> int:
        """The stripe of `key` — the same in every process (its text's CRC-32, not Python's hash)."""
        return zlib.crc32(str(key).encode()) % self.stripes

    @contextmanager
    def hold(self, key: object) -> Iterator[None]:
        """Wait for `key`'s turn and hold it: first among this process's threads, then among the host's
        processes (a stripe's file is used by one thread of a process at a time)."""
        number = self.stripe(key)
        threads, descriptor = self._stripe(number)
        with threads:
            if descriptor is None:
                yield
                return
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _stripe(self, number: int) -> tuple[threading.Lock, int | None]:
        if self._pid != os.getpid():
            self._start_process()
        descriptor = self._files[number]
        if descriptor is None and self._shared:
            with self._setup:
                descriptor = self._files[number]
                if descriptor is None and self._shared:
                    descriptor = self._files[number] = self._open(number)
        return self._threads[number], descriptor

    def _start_process(self) -> None:
        """This process's own locks and files: a forked child must not share its parent's (a lock held
        at the fork would never be released in the child; a file's lock belongs to the open file, which
        a fork shares)."""
        with self._setup:
            if self._pid == os.getpid():
                return
            self._threads = tuple(threading.Lock() for _ in range(self.stripes))
            self._files = [None] * self.stripes
            self._shared = fcntl is not None
            self._checked = None
            self._pid = os.getpid()

    def _open(self, number: int) -> int | None:
        try:
            if self._checked is None:
                self._checked = self._private_directory()
            return os.open(
                self._checked / f"{self.name}.{number}",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError as error:
            self._shared = False
            logger.warning("turns %s are taken within each process only: %s", self.name, error)
            return None

    def _private_directory(self) -> Path:
        """The directory of the turns' files, made if missing; PermissionError unless it is this user's alone."""
        uid = os.geteuid()
        directory = self._directory or Path(tempfile.gettempdir()) / f"switchboard-turns-{uid}"
        with suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        found = os.lstat(directory)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != uid or found.st_mode & 0o077:
            raise PermissionError(f"{directory} is not a directory of this user's alone")
        return directory
