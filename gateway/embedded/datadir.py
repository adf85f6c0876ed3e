"""The data dir's owner: one live `gateway serve` process per data dir, running its embedded Redis.

The owner holds an exclusive flock on `<data dir>/gateway.lock`, which the kernel drops when the
process ends, however it ends (SIGKILL included); the file also names the owner's pid, for the
error message. A redis-server found answering on the data dir's socket is then known to be an
orphan whose gateway is gone, and is taken over; while the lock is held elsewhere the data dir is
refused instead, so a second gateway never stops the live Redis of the first. (A pid alone could
be reused by an unrelated process; the lock cannot outlive its holder.) The redis-server child
does not inherit the descriptor (close_fds, O_CLOEXEC), nor do uvicorn's spawned workers.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirInUse(RuntimeError):
    """Another live process owns the data dir and the redis-server running on it."""

    def __init__(self, data_dir: Path, owner: int | None) -> None:
        self.data_dir = data_dir
        self.owner = owner
        who = f"gateway process {owner}" if owner else "another gateway process"
        super().__init__(
            f"the data dir {data_dir} is in use by {who}, which runs its embedded Redis; stop "
            "that process first, or give this one another GATEWAY_DATA_DIR (or a REDIS_URL)"
        )


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "gateway.lock"
        self._fd: int | None = None  # the descriptor holding the flock

    def claim(self) -> None:
        """Own the data dir for as long as this process lives (a no-op while it does)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DataDirInUse(self.data_dir, int(text) if text.isdigit() else None) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        # The file stays: removing it could let two processes lock two different files.
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
