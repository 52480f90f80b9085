"""One sandbox per state folder: `sandbox up` holds an exclusive `flock` on `<state>/sandbox.lock`
for as long as it runs.

Two sandboxes on one folder would both run the durable job queue (deliveries twice) and start
two DynamoDB Local processes on one data folder (damaged files); `make run` in two terminals
does exactly that. The kernel releases a `flock` when its holder dies, even by SIGKILL, so a
crashed sandbox never leaves a stale lock behind, and the file's content (the holder's pid and
URL) only serves the message the second `up` prints. `trace`, `orders` and `dlq` only read and
take no lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

LOCK_FILE = "sandbox.lock"


class StateLocked(Exception):
    """Another sandbox runs on this state folder; the message names it and the way out."""


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, url: str) -> None:
        """Take the lock or raise `StateLocked` naming the sandbox that holds it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise StateLocked(
                f"{self.state_dir} is in use by the sandbox {holder}: use that one, stop it, "
                "or give this one another folder with --state") from None
        self._fd = fd
        self.announce(url)

    def announce(self, url: str) -> None:
        """Say who holds the lock (the URL once the port is known)."""
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} at {url}\n".encode(), 0)

    def empty_folder(self) -> None:
        """`--reset` under the lock: everything in the folder goes but the lock file itself,
        which a second `up` may be waiting on."""
        assert self._fd is not None
        for entry in self.state_dir.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
