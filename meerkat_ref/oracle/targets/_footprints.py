"""Footprints: what each step of a service in this process touched, for partial-order reduction.

The explorer may skip reordering two steps only if they *commute*: neither
writes anything the other reads or writes.  A step here is everything that
ran between two settles (the released task, and every task it woke), so the
recorder is switched on only while the target waits for quiescence; the
engine's own looking (statistics, the store shadow) is never recorded.

What is recorded, without changing a line of the service (everything goes
through seams the target already owns, or wraps objects after the service
built them):

- ``task``: every service task that ran (a Trio instrument).  A step that
  wakes a task, and that task's next step, so always conflict: this is how
  "enables" enters the happens-before order.
- ``row``: store calls, per session (the recording store); a listing reads
  every row.
- ``inflight``: what the oracle's rules know of calls in flight.  A call's
  invocation and its answer write it for the session the call names (every
  session, for a create or a checkpointer sweep), as does a failed store
  call; every step that touches a session's row or objects reads it.  The
  rules excuse some effects while a call is in flight (a checkpoint skipped
  while an archive of its session was invoked), so these steps must keep
  their order with the invocation, or a reordering could hide a violation.
- ``clock``, ``ids``: every tick of the shared logical clock and every id
  taken.  Ticks do not commute: timestamps are part of the end state (the
  store keeps ``updated_at``; ``list`` orders by it), so two steps that both
  read the clock are dependent even on two different sessions.
- the service's objects: the two services' attributes (``svc``, ``inner``),
  their maps (per key; iterating reads every key), and each object a map
  holds (a gate, a live handle) and each agent, per attribute.  Reading an
  attribute that holds a mutable object (a lock, a channel, a cancel scope)
  counts as writing it, since the reader may change it.  What a session's
  own task touches inside its handle through locals (its inbox, its scopes)
  is covered by writing the whole handle (``session:<id>``, ``*``) whenever
  that task runs.

The claim is conservative, not exact: a missed access would make the
reduction unsound, an extra one only costs schedules.  The tracking covers
attributes present when an object is first seen plus any set later; state
kept outside these objects (a module global, say) is not seen, so a service
factory whose objects this does not recognise gets no reduction at all
(``tracked`` stays False and every step conflicts with every other).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Callable, Iterator
from typing import Any

import trio

from ..._types import SessionId
from ._protocol import Footprint, Resource


class Recorder:
    """Accesses since the last ``take``; recording only while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.tracked = False  # the service's objects are being watched
        self.reads: set[Resource] = set()
        self.writes: set[Resource] = set()
        self.task_sessions: dict[str, str] = {}  # session task name -> session id

    def read(self, group: str, item: str) -> None:
        if self.on:
            self.reads.add((group, item))

    def write(self, group: str, item: str) -> None:
        if self.on:
            self.writes.add((group, item))

    def ran(self, name: str) -> None:
        """A service task ran: its own resource, and (a session task) its whole handle."""
        if not self.on:
            return
        self.writes.add(("task", name))
        sid = self.task_sessions.get(name)
        if sid is not None:  # its handle, whichever map holds it
            self.writes.add((f"session:{sid}", "*"))
            self.writes.add((f"task:{sid}", "*"))

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False

    def take(self) -> Footprint | None:
        """What was touched since the last take (``None``: untracked, touches everything)."""
        # A step that touches a session's row, gate, handle or agent is one the
        # oracle's rules judge against the calls in flight for that session
        # ("archive invoked", "a turn in flight"): it must keep its order with
        # their invocations and answers (``inflight``, written by those).
        touched = {_session_of(group, item) for group, item in (*self.reads, *self.writes)}
        touched.discard(None)
        self.reads.update(("inflight", sid) for sid in touched if sid is not None)
        reads, writes = frozenset(self.reads), frozenset(self.writes)
        self.reads.clear()
        self.writes.clear()
        if not self.tracked:
            return None
        return Footprint(reads, writes)


_SESSION_GROUPS = ("gate:", "session:", "task:", "agent:")


def _session_of(group: str, item: str) -> str | None:
    if group == "row":
        return None if item == "*" else item
    if group.startswith(_SESSION_GROUPS):
        return group.split(":", 1)[1]
    return None


def service_task(name: str) -> bool:
    """Whether a Trio task is one of the service's (a call's or a session's)."""
    return name.startswith(("c:", "session ", "req "))


class TaskInstrument(trio.abc.Instrument):
    """Records every service task that takes a step while recording."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.recorder.on and service_task(task.name):
            self.recorder.ran(task.name)


# -- watching objects -----------------------------------------------------------------------

_PLAIN = (type(None), bool, int, float, str, bytes, tuple, frozenset, enum.Enum, SessionId)
_TRACKED = "__footprint_group__"


def _plain(value: Any, infra: Callable[[Any], bool]) -> bool:
    """A value whose reading cannot lead to a change: immutable, watched itself, or ours."""
    if isinstance(value, _PLAIN) or infra(value):
        return True
    if _TRACKED in getattr(value, "__dict__", {}) or isinstance(value, TrackedDict):
        return True
    params = getattr(type(value), "__dataclass_params__", None)
    return bool(dataclasses.is_dataclass(value) and params is not None and params.frozen)


class TrackedDict(dict[Any, Any]):
    """A service's map, recording each key touched (iteration reads them all).

    An object stored in it (a gate, a live handle) is watched from then on,
    under the group ``<kind>:<key>``.
    """

    def __init__(self, items: dict[Any, Any], group: str, kind: str, watcher: Watcher) -> None:
        super().__init__(items)
        self._group = group
        self._kind = kind
        self._watcher = watcher
        for key, value in items.items():
            watcher.watch(value, f"{kind}:{key}")

    def _r(self, key: Any) -> None:
        self._watcher.recorder.read(self._group, str(key))

    def _w(self, key: Any) -> None:
        self._watcher.recorder.write(self._group, str(key))

    def _all(self) -> None:
        self._watcher.recorder.read(self._group, "*")

    def __getitem__(self, key: Any) -> Any:
        self._r(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._r(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._r(key)
        return super().__contains__(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._w(key)
        self._watcher.watch(value, f"{self._kind}:{key}")
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._w(key)
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._w(key)
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._w(key)
        return super().setdefault(key, default)

    def popitem(self) -> tuple[Any, Any]:
        self._watcher.recorder.write(self._group, "*")
        return super().popitem()

    def clear(self) -> None:
        self._watcher.recorder.write(self._group, "*")
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._watcher.recorder.write(self._group, "*")
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __iter__(self) -> Iterator[Any]:
        self._all()
        return super().__iter__()

    def __len__(self) -> int:
        self._all()
        return super().__len__()

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def values(self) -> Any:
        self._all()
        return super().values()

    def items(self) -> Any:
        self._all()
        return super().items()

    def copy(self) -> dict[Any, Any]:
        self._all()
        return dict(super().items())


_CLASSES: dict[tuple[type, frozenset[str]], type] = {}


def _attribute(name: str) -> property:
    def get(self: Any) -> Any:
        d = self.__dict__
        value = d[name] if name in d else getattr(type(self).__mro__[1], name)
        watcher: Watcher = d["__footprint_watcher__"]
        if not watcher.recorder.on:
            return value
        if _plain(value, watcher.infra):
            watcher.recorder.read(d[_TRACKED], name)
        else:
            watcher.recorder.write(d[_TRACKED], name)
        return value

    def set_(self: Any, value: Any) -> None:
        d = self.__dict__
        d["__footprint_watcher__"].recorder.write(d[_TRACKED], name)
        d[name] = value

    return property(get, set_)


def _watched_class(cls: type, names: frozenset[str]) -> type:
    key = (cls, names)
    found = _CLASSES.get(key)
    if found is None:

        def __setattr__(self: Any, name: str, value: Any) -> None:
            d = self.__dict__
            if name not in names and _TRACKED in d:
                d["__footprint_watcher__"].recorder.write(d[_TRACKED], name)
            object.__setattr__(self, name, value)

        body: dict[str, Any] = {n: _attribute(n) for n in names}
        body["__setattr__"] = __setattr__
        found = type(cls.__name__, (cls,), body)
        _CLASSES[key] = found
    return found


def _data_names(obj: Any) -> frozenset[str]:
    """Instance attributes, and plain class-level defaults a subclass may shadow."""
    names = set(vars(obj))
    for klass in type(obj).__mro__[:-1]:
        for name, value in vars(klass).items():
            if not name.startswith("__") and isinstance(value, _PLAIN) and not isinstance(
                value, type
            ):
                names.add(name)
    return frozenset(n for n in names if not n.startswith("__"))


class Watcher:
    """Turns a service's objects into watched ones (see the module docstring)."""

    def __init__(self, recorder: Recorder, infra: Callable[[Any], bool]) -> None:
        self.recorder = recorder
        self.infra = infra

    def watch(self, obj: Any, group: str) -> None:
        """Watch ``obj``'s attributes under ``group`` (once; plain values are left alone)."""
        d = getattr(obj, "__dict__", None)
        if d is None or _TRACKED in d or _plain(obj, self.infra) or isinstance(obj, type):
            return
        plain_setattr = type(obj).__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
        if not plain_setattr or hasattr(type(obj), "__slots__"):
            return  # not safe to swap its class: its owner's steps still name it
        names = _data_names(obj)
        for name in list(d):
            value = d[name]
            if type(value) is dict:
                d[name] = TrackedDict(value, f"{group}.{name}", name.lstrip("_").rstrip("s"),
                                      self)
        d["__footprint_watcher__"] = self
        d[_TRACKED] = group
        obj.__class__ = _watched_class(type(obj), names)


def session_key(value: Any) -> str:
    return str(value)


__all__ = ["Recorder", "TaskInstrument", "TrackedDict", "Watcher", "service_task"]
