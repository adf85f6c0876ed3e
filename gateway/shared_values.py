"""Metric values that every worker process of one server reads: with `--workers N`, `/metrics`
answers for the whole server whichever worker the scrape reaches.

Each process writes its own figures as float64 slots of a memory-mapped file in the server's
directory (`gateway serve` makes a fresh one and passes it on as GATEWAY_METRICS_DIR): an
increment is one store into shared memory, ~0.1 us more than the plain dict it replaced, with
no lock (a worker's metrics are written from its event loop only). What each slot is, a
family's name and labels, is appended to an index file beside it before the slot is first
written, so a reader never meets a slot it cannot name. A scrape reads every process's pair of
files and sums them (gauges: the largest of the processes still running). prometheus-client's
multiprocess mode does the same with a lock and a struct write per increment: 3 to 6 times the
cost of one here (measured in docs/operations.md, Metrics).

Without a directory (the app under another server, tests) the slots are in this process's memory
and the scrape reads them alone.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

DIR_ENV = "GATEWAY_METRICS_DIR"
FIRST_SLOTS = 4096  # 32 KiB; doubled when full (label sets are few: tenants x types x reasons)
SLOT = 8  # bytes of a float64

Labels = tuple[str, ...]
# family name -> labels -> the values (one, or a histogram's buckets and sum)
Values = dict[str, dict[Labels, list[float]]]


@contextlib.contextmanager
def server_directory() -> Iterator[None]:
    """A fresh directory for one server's processes, named in the environment its workers
    inherit, so that /metrics counts this server's processes and no earlier one's."""
    os.environ[DIR_ENV] = tempfile.mkdtemp(prefix="gateway-metrics-")
    try:
        yield
    finally:
        shutil.rmtree(os.environ.pop(DIR_ENV), ignore_errors=True)


class SharedValues:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.used = 0
        self.named: list[tuple[int, str, Labels, int]] = []  # first slot, name, labels, width
        self.index_fd: int | None = None
        self.file: mmap.mmap | None = None
        self.memory = bytearray()
        if directory is not None:
            fd, values_path = tempfile.mkstemp(".values", f"{os.getpid()}-", directory)
            self.index_fd = os.open(
                values_path.removesuffix(".values") + ".index",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o600,
            )
            os.ftruncate(fd, FIRST_SLOTS * SLOT)
            self.file = mmap.mmap(fd, FIRST_SLOTS * SLOT)
            os.close(fd)  # the map keeps the file
            self.base = memoryview(self.file)
        else:
            self.memory = bytearray(FIRST_SLOTS * SLOT)
            self.base = memoryview(self.memory)
        self.view = self.base.cast("d")

    def allocate(self, name: str, labels: Labels, width: int) -> int:
        """The first of `width` fresh slots for the family `name` with `labels`."""
        first = self.used
        if first + width > len(self.view):
            self._grow(2 * (first + width))
        self.used = first + width
        self.named.append((first, name, labels, width))
        if self.index_fd is not None:
            os.write(self.index_fd, orjson.dumps([first, name, labels, width]) + b"\n")
        return first

    def _grow(self, slots: int) -> None:
        self.view.release()  # a buffer cannot be resized while a view of it exists
        self.base.release()
        if self.file is not None:
            self.file.resize(slots * SLOT)  # the file grows with the map
            self.base = memoryview(self.file)
        else:
            self.memory.extend(bytes(slots * SLOT - len(self.memory)))
            self.base = memoryview(self.memory)
        self.view = self.base.cast("d")

    def read(self, gauges: frozenset[str]) -> Values:
        """Every process's values summed per family and labels; for the `gauges`, the largest
        of the processes that still run."""
        merged: Values = {}
        for alive, named, values in self._sources():
            for first, name, labels, width in named:
                if name in gauges and not alive:
                    continue
                found = list(values[first : first + width])
                if len(found) < width:
                    continue  # past the end read: not written yet
                by_labels = merged.setdefault(name, {})
                known = by_labels.get(labels)
                if known is None:
                    by_labels[labels] = found
                elif name in gauges:
                    by_labels[labels] = [max(a, b) for a, b in zip(known, found, strict=True)]
                else:
                    by_labels[labels] = [a + b for a, b in zip(known, found, strict=True)]
        return merged

    def _sources(
        self,
    ) -> Iterator[tuple[bool, list[tuple[int, str, Labels, int]], memoryview[float]]]:
        if self.directory is None:
            yield True, self.named, self.view
            return
        for index in sorted(self.directory.glob("*.index")):
            try:
                # Whole lines only: one being written has no line break yet.
                lines = index.read_bytes().split(b"\n")[:-1]
                values = index.with_suffix(".values").read_bytes()
            except FileNotFoundError:
                continue
            named = [(f, n, tuple(labels), w) for f, n, labels, w in map(orjson.loads, lines)]
            usable = len(values) - len(values) % SLOT
            yield _alive(index.name), named, memoryview(values[:usable]).cast("d")


def _alive(name: str) -> bool:
    pid = int(name.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process by that id
        return True
    return True
