"""The data dir's owner: one live `gateway serve` process per data dir, running its embedded Redis.

The owner holds an exclusive flock on `<data dir>/gateway.lock`, which the kernel drops when the
process ends, however it ends (SIGKILL included); the file also names the owner's pid, for the
error message. A redis-server found answering on the data dir's socket is then known to be an
orphan whose gateway is gone, and is taken over; while the lock is held elsewhere the data dir is
refused instead, so a second gateway never stops the live Redis of the first. (A pid alone could
be reused by an unrelated process; the lock cannot outlive its holder.) The redis-server child
does not inherit the descriptor (close_fds, O_CLOEXEC), nor do uvicorn's spawned workers.

The data dir holds every email, phone and page view (the append-only file), so it is the
operator's alone: it is created 0700 and `tighten_data_dir` makes an existing one 0700 and
what is in it 0600 (docs/operations.md,
Data at rest); the server writes its files under umask 077 (server.py).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("gateway.embedded")


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


def tighten_data_dir(data_dir: Path) -> None:
    """Make an existing data dir the owner's alone: directories in it 0700, files 0600 (an older
    gateway, or a dir made by hand, left them readable by other local users), with a log line
    naming what was tightened. The dir's parents are the operator's business and left alone."""
    tightened = []
    for path in [data_dir, *sorted(data_dir.rglob("*"))]:
        try:
            mode = path.lstat().st_mode
            # A symlink's own mode means nothing; the socket is made 0700 by Redis.
            if stat.S_ISLNK(mode) or stat.S_IMODE(mode) & 0o077 == 0:
                continue
            os.chmod(path, stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:
            continue  # an orphan server's temporary file, gone meanwhile
        tightened.append(str(path.relative_to(data_dir)))
    if tightened:
        log.warning(
            "the data dir was readable by other local users: tightened to its owner only",
            extra={"data_dir": str(data_dir), "paths": tightened},
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
