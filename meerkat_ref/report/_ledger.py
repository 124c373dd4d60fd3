"""A ledger: results written one JSON line at a time as they are found, read back to resume.

Why: a long run (``meerkat-ref sweep --scope full`` takes hours) that is
stopped must keep what it proved.  Each result is appended as it is found;
the next run reads them back and does only the rest.  What the results
prove depends on what produced them, so the file opens with a **header**
line saying exactly that (the caller's choice: for the sweep, its scope,
variants, store, shard, and fingerprints of the code and of the scenario
list), and a run whose header differs is refused (``LedgerError``), never
mixed with it.

The file, one JSON object a line:

- line 1: the header, a JSON object whose first key is ``"format"`` (its
  value names the kind of ledger: ``meerkat-ref/sweep-ledger@1``);
- then one line per result (the caller's rows), in the order they finished.

Writes are whole lines or nothing, as far as a reader can tell:

- each batch of rows is one ``os.write`` of whole lines on a descriptor
  opened ``O_APPEND``, then ``fsync`` (a row acknowledged survives a crash
  of the machine, not only of the process);
- a kill can still cut the last line short.  A last line without its
  newline is **torn**: it is dropped when the ledger is opened (the file is
  truncated to its last whole line, so the next append starts on a line of
  its own) and ``torn`` says so.  The same holds for a header cut short (the
  file is then as good as empty), recognised by its opening, so a file that
  is not a ledger is never taken for a torn one.

One writer at a time: ``flock(LOCK_EX | LOCK_NB)`` on the ledger itself
(released by the kernel however the writer dies), so a second run on the
same ledger is refused at once instead of interleaving its rows.  Local
file systems only, as for the store's lock (``store/_owner.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["Ledger", "LedgerError"]


class LedgerError(ValueError):
    """A ledger this run cannot use (another run's, not a ledger, damaged, in use): exit 2."""


def _differences(found: Mapping[str, object], wanted: Mapping[str, object]) -> list[str]:
    """``key: the ledger's X, this run's Y`` for each header field that differs."""

    def show(value: object) -> str:
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "..."

    return [f"{key}: the ledger's {show(found.get(key))}, this run's {show(wanted.get(key))}"
            for key in sorted(set(found) | set(wanted)) if found.get(key) != wanted.get(key)]


class Ledger:
    """An open ledger: the rows already in it (``rows``) and ``append`` for new ones.

    ``open`` reads an existing ledger whose header equals ``header`` (every
    field), or starts one; ``fresh`` replaces an existing *ledger* (of the
    same format) whatever its header.  A file that is not such a ledger is
    never overwritten, ``fresh`` or not.
    """

    def __init__(self, path: Path, fd: int, header: dict[str, object],
                 rows: list[dict[str, object]], torn: bool, created: bool) -> None:
        self.path = path
        self.header = header
        self.rows = rows  # whole rows already in the file, in file order
        self.torn = torn  # a torn last line was dropped on opening
        self.created = created  # no ledger was there (or --fresh replaced it)
        self._fd: int | None = fd

    @classmethod
    def open(cls, path: str | Path, header: Mapping[str, object], *,
             fresh: bool = False) -> Ledger:
        """The ledger at ``path`` for a run described by ``header``; ``LedgerError`` if not."""
        wanted: dict[str, object] = json.loads(json.dumps(header))  # lists, as read back
        kind = wanted.get("format")
        if not isinstance(kind, str) or next(iter(wanted)) != "format":
            raise ValueError("a ledger header's first key is 'format', a string")
        where = Path(path)
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LedgerError(f"ledger {where}: cannot open it: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerError(
                    f"ledger {where} is in use by another run (it holds the file's lock); "
                    "wait for it, or give this run another file with --ledger FILE"
                ) from None
            return cls._read(where, fd, wanted, kind, fresh)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _read(cls, where: Path, fd: int, header: dict[str, object], kind: str,
              fresh: bool) -> Ledger:
        data = b""
        while chunk := os.pread(fd, 1 << 20, len(data)):
            data += chunk
        whole, _, tail = data.rpartition(b"\n")
        lines = whole.split(b"\n") if whole or data.endswith(b"\n") else []
        opening = json.dumps({"format": kind})[:-1].encode()  # '{"format": "..."'
        if not lines:  # nothing whole: empty, or a header cut short by a kill
            if tail and not (tail.startswith(opening) or opening.startswith(tail)):
                raise LedgerError(f"{where} is not a ledger (and is not empty): "
                                  "refusing to overwrite it; name another file")
            return cls._start(where, fd, header)
        try:
            found = json.loads(lines[0])
        except ValueError:
            found = None
        if not isinstance(found, dict) or found.get("format") != kind:
            raise LedgerError(f"{where} is not a ledger of the kind {kind!r} (its first line "
                              "is not its header): refusing to overwrite it; name another file")
        if fresh:
            return cls._start(where, fd, header)
        if found != header:
            raise LedgerError(
                f"ledger {where} belongs to another run, so its rows prove nothing about this "
                f"one ({'; '.join(_differences(found, header))}). Start it over with --fresh "
                "(it is replaced), or keep it and name another file with --ledger FILE"
            )
        rows = []
        for number, line in enumerate(lines[1:], start=2):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                raise LedgerError(f"ledger {where}, line {number}: not a JSON object (a whole "
                                  "line that is not a row: the file was changed by hand?)")
            rows.append(row)
        if tail:  # a last line cut short by a kill: dropped, so the next append starts clean
            os.ftruncate(fd, len(data) - len(tail))
            os.fsync(fd)
        return cls(where, fd, header, rows, torn=bool(tail), created=False)

    @classmethod
    def _start(cls, where: Path, fd: int, header: dict[str, object]) -> Ledger:
        os.ftruncate(fd, 0)
        ledger = cls(where, fd, header, [], torn=False, created=True)
        ledger._write([header])
        return ledger

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Add ``rows``, one line each, in one write; on disk (``fsync``) when this returns."""
        if rows:
            self._write(rows)

    def _write(self, rows: Sequence[Mapping[str, object]]) -> None:
        if self._fd is None:
            raise ValueError(f"ledger {self.path} is closed")
        data = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def close(self) -> None:
        """Release the file (and its lock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
