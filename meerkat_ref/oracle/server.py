"""The adapter protocol's server side: any ``InProcessTarget`` served as JSON lines.

``python -m meerkat_ref.adapter`` serves the reference (or the seed variant)
this way, so the service a port is compared with is the very object
``meerkat-ref check`` explores.  ``spec/ADAPTER.md`` is the protocol; this is
its reference implementation.

Every line gets exactly one answer, and no input ends the process: a line
that is not JSON (too deep, a number too long, bad UTF-8), not an object, too
long (answered once, the rest of it skipped), or a command that fails inside
the server is answered ``BAD_REQUEST`` or ``INTERNAL`` and serving goes on.
End of input means ``bye``.

Nothing read is executed or used as a path: commands are looked up in the
registry's fixed table, every field is type-checked there, and the store is
in memory (or a temporary SQLite file the target owns).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable

import trio

from .._model import model
from .._seams import Footprints
from ..registry import PROCESS_COMMANDS, SERVICE_COMMANDS, WireError, field, known_fields
from ..registry._values import Json, encode
from .targets import (
    CONTROL_COMMANDS,
    CONTROL_FIELDS,
    MAX_LINE,
    PROTOCOL,
    Answer,
    InProcessTarget,
    OpenRefused,
    Point,
)
from .targets import dumps as _dumps
from .targets import show as _show

Emit = Callable[[dict[str, Json]], None]

_OWN_FIELDS: dict[str, tuple[str, ...]] = {
    **CONTROL_FIELDS, "restart": ("task",), "observe_store": ("task",),
    "fail_next_save": ("task",),
}
"""The fields of the commands the server answers itself (rule WIRE-FIELDS: no others)."""


def _capacity(msg: dict[str, Json]) -> Json:
    """``open``'s capacity, for the service to judge ([INPUT]); BAD_REQUEST only if missing or huge.

    The service refuses a capacity that is not an integer of at least 1
    (``INVALID_ARGUMENT``, as its constructor does), so the value is passed on
    as it came -- ``true``, ``1.5``, ``0`` included -- and the service's own
    check answers.  Past 10,000 the adapter refuses it itself: a resource
    limit of the adapter, not a rule of the contract ([WIRE-FIELDS]).
    """
    if "capacity" not in msg:
        raise WireError("BAD_REQUEST", "open: missing field 'capacity'")
    value = msg["capacity"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 1.0 is the integer 1 [WIRE-FIELDS]
    if isinstance(value, int) and not isinstance(value, bool) and value > 10_000:
        raise WireError("BAD_REQUEST", f"open: capacity must be at most 10000, got {value}")
    return value


class TooLong(bytes):
    """The first ``MAX_LINE`` bytes of a line that was longer (the rest is skipped)."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("meerkat-ref")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _unreadable(exc: Exception) -> str:
    """Why ``json.loads`` refused a line, in words (never the exception's own text)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    return "a number too long"  # int(): "Exceeds the limit (4300 digits)"


def _named(rid: str, limit: int = 60) -> str:
    """A request id inside a message: the answer echoes it whole already, the message need not."""
    return rid if len(rid) <= limit else f"{rid[:limit]}... ({len(rid):,} characters)"


def _request_id(msg: dict[str, Json]) -> str:
    rid = msg.get("id")
    if not isinstance(rid, str) or not rid:
        raise WireError("BAD_REQUEST", 'every command needs an "id": a non-empty string')
    return rid


def _answer_json(rid: str | None, answer: Answer) -> dict[str, Json]:
    result = answer.result
    if isinstance(result, model.Crashed):
        return {"id": rid, "crashed": True}
    if isinstance(result, model.Err):
        return {"id": rid, "error": {"code": result.code, "message": answer.message}}
    return {"id": rid, "ok": encode(result.value)}


CAPABILITIES: tuple[str, ...] = ("points", "faults", "placement", "events", "exit", "footprints")
"""What the reference adapter can offer (``spec/ADAPTER.md`` sections 6, 11, 13 and 14)."""


class Server:
    """The protocol, transport-free: feed it lines with ``handle``; it calls ``emit``.

    ``handle`` must always be called from the same task, inside ``async with target``.
    ``capabilities``: what ``hello`` offers (a subset of ``CAPABILITIES``); a
    command that needs one not offered is answered ``UNSUPPORTED``, as a port
    without it would answer, so the oracle's side of a port with fewer
    capabilities can be tested against the reference itself.  ``footprints``:
    the declaration ``hello`` offers with the capability of that name (the
    service's own, for a persistent ``open``); none, and it is not offered.
    """

    def __init__(self, target: InProcessTarget, emit: Emit, variant: str,
                 capabilities: tuple[str, ...] = CAPABILITIES,
                 footprints: Footprints | None = None) -> None:
        unknown = set(capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilit{'ies' if len(unknown) > 1 else 'y'}: "
                             f"{', '.join(sorted(unknown))}; known: {', '.join(CAPABILITIES)}")
        self.target = target
        self.emit = emit
        self.variant = variant
        # placement (and events) only where the target offers them (no placement: the seed)
        self.capabilities = tuple(c for c in CAPABILITIES if c in capabilities and (
            c not in ("placement", "events", "exit") or c in target.capabilities) and (
            c != "footprints" or footprints is not None))
        self.footprints = footprints
        self._open = False
        self._lines = 0
        self._in_flight: set[str] = set()
        target.on_point = self._point
        target.on_answer = self._answered

    def _point(self, point: Point) -> None:
        self.emit({"event": "point", "task": point.task, "kind": point.kind,
                   "session": point.session})

    def _answered(self, cid: str, answer: Answer) -> None:
        self._in_flight.discard(cid)
        self.emit(_answer_json(cid, answer))

    def _error(self, rid: str | None, code: str, message: str) -> None:
        self.emit({"id": rid, "error": {"code": code, "message": message}})

    async def handle(self, line: bytes | str) -> bool:
        """Act on one command line; ``False`` once the oracle said ``bye``."""
        self._lines += 1
        rid: str | None = None
        try:
            if isinstance(line, TooLong):
                raise WireError("BAD_REQUEST",
                                f"line {self._lines}: longer than {MAX_LINE} bytes")
            try:
                msg = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise WireError(
                    "BAD_REQUEST", f"line {self._lines}: {_unreadable(exc)}: {_show(line)}"
                ) from None
            if not isinstance(msg, dict):
                raise WireError("BAD_REQUEST", f"line {self._lines}: not a JSON object")
            rid = _request_id(msg)
            cmd = msg.get("cmd")
            if not isinstance(cmd, str):
                raise WireError("BAD_REQUEST", f'request {_named(rid)}: "cmd" must be a string')
            if cmd in _OWN_FIELDS:
                known_fields({k: v for k, v in msg.items() if k != "id"}, _OWN_FIELDS[cmd])
            if cmd in CONTROL_COMMANDS:
                return await self._control(rid, cmd, msg)
            if cmd not in SERVICE_COMMANDS:
                raise WireError("UNKNOWN_COMMAND",
                                f"request {_named(rid)}: unknown command {_show(cmd, 60)}")
            await self._service(rid, cmd, msg)
        except WireError as exc:
            self._error(rid, exc.code, exc.message)
        except Exception as exc:  # a bug here: say so, keep serving
            self._error(rid, "INTERNAL", f"{type(exc).__name__}: {str(exc)[:300]}")
        return True

    async def _control(self, rid: str, cmd: str, msg: dict[str, Json]) -> bool:
        if cmd == "hello":
            self.emit({"id": rid, "ok": {
                "protocol": PROTOCOL,
                "implementation": "meerkat-ref",
                "version": _version(),
                "contract": "meerkat-session 0.4.0",
                "variant": self.variant,
                "capabilities": list(self.capabilities),
                "store": self.target.store_kind,
                **({"footprints": self.footprints.to_json()}
                   if self.footprints is not None and "footprints" in self.capabilities else {}),
                **({"fault_kinds": list(self.target.fault_kinds)}
                   if "faults" in self.capabilities and self.target.fault_kinds else {}),
            }})
        elif cmd == "open":
            capacity = _capacity(msg)
            persistent = field(msg, "persistent", "bool", True)
            try:
                await self.target.open(capacity, persistent)
            except OpenRefused as exc:  # the service's own check [INPUT]; nothing is open
                self._open = False
                self._error(rid, exc.code, exc.message)
                return True
            self._open = True
            self.emit({"id": rid, "ok": None})
        elif cmd == "settle":
            self._need_open(rid, cmd)
            store = field(msg, "store", "bool", False)
            events = field(msg, "events", "bool", False)
            if events:
                self._need("events", rid, 'settle with "events": true')
            settled = await self.target.settle()
            parked = [{"task": p.task, "kind": p.kind, "session": p.session}
                      for p in settled.parked]
            answer: dict[str, Json] = {"parked": parked}
            if store:
                answer["store"] = encode(await self.target.observe_store())
            if events:
                answer["events"] = encode(settled.events or {})
            self.emit({"id": rid, "ok": answer})
        elif cmd == "control":
            self._need_open(rid, cmd)
            on = field(msg, "points", "bool")
            self._need("points", rid, cmd)
            await self.target.control(on)
            self.emit({"id": rid, "ok": None})
        elif cmd == "release":
            self._need_open(rid, cmd)
            label = field(msg, "task", "str")
            fault = field(msg, "fault", "bool", False)
            kind = field(msg, "kind", "str", "")
            if fault:
                self._need("faults", rid, 'release with "fault": true')
            try:
                await self.target.release(label, fault, kind)
            except LookupError as exc:
                raise WireError("NOT_PARKED", str(exc)) from None
            except ValueError as exc:
                raise WireError("BAD_REQUEST", str(exc)) from None
            self.emit({"id": rid, "ok": None})
        elif cmd == "at_once":
            self._need_open(rid, cmd)
            self._at_once(rid, msg)
        elif cmd == "exit":
            self._need_open(rid, cmd)
            self._need("exit", rid, cmd)
            await self.target.exit()
            self.emit({"id": rid, "ok": None})
        elif cmd == "bye":
            await self.target.close()
            self._open = False
            self.emit({"id": rid, "ok": None})
            return False
        return True

    def _need(self, capability: str, rid: str, what: str) -> None:
        if capability not in self.capabilities:
            raise WireError("UNSUPPORTED", f"request {_named(rid)}: {what} needs the "
                            f"{capability} capability, which this adapter does not offer")

    def _need_open(self, rid: str, cmd: str) -> None:
        if not self._open:
            raise WireError("NOT_OPEN", f'request {_named(rid)}: {cmd} before "open"')

    def _start(self, rid: str, msg: dict[str, Json]) -> None:
        label = field(msg, "task", "str", None) or f"req {rid}"
        if rid in self._in_flight:
            raise WireError("BAD_REQUEST", f"request id {_show(rid, 60)} is already in flight")
        self._in_flight.add(rid)
        try:
            self.target.start(rid, {k: v for k, v in msg.items() if k not in ("id", "task")},
                              label)
        except BaseException:
            self._in_flight.discard(rid)  # not started: the id may be used again
            raise

    async def _service(self, rid: str, cmd: str, msg: dict[str, Json]) -> None:
        self._need_open(rid, cmd)
        if cmd == "restart":
            await self.target.restart()
            self.emit({"id": rid, "ok": None})
        elif cmd == "observe_store":
            self.emit({"id": rid, "ok": encode(await self.target.observe_store())})
        elif cmd == "fail_next_save":
            self._need("faults", rid, cmd)
            self.target.fail_next_save()
            self.emit({"id": rid, "ok": None})
        else:
            self._start(rid, msg)

    def _at_once(self, rid: str, msg: dict[str, Json]) -> None:
        """Start every sub-command before any of them runs: they are truly in flight together.

        A sub-command with a bad field is answered (under its own id) at once
        and not started; the others start in list order, in this one step.
        """
        subs = msg.get("commands")
        if not isinstance(subs, list) or not subs or not all(isinstance(c, dict) for c in subs):
            raise WireError("BAD_REQUEST", 'at_once: "commands" must be a non-empty list of '
                            "command objects")
        for sub in subs:
            sub_rid: str | None = None
            try:
                sub_rid = _request_id(sub)
                cmd = sub.get("cmd")
                if cmd not in SERVICE_COMMANDS or cmd in PROCESS_COMMANDS:
                    raise WireError("BAD_REQUEST", f"at_once: {_show(str(cmd), 60)} is not a "
                                    "service call that can run at once")
                self._start(sub_rid, sub)
            except WireError as exc:
                self._error(sub_rid, exc.code, exc.message)
        self.emit({"id": rid, "ok": None})


# -- stdio -------------------------------------------------------------------------------------


async def stdin_lines(limit: int = MAX_LINE) -> AsyncIterator[bytes]:
    """Lines of stdin, without newlines; a line over ``limit`` bytes comes once as ``TooLong``."""
    if os.name == "posix" and not sys.stdin.isatty():
        stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        async with stream:
            async for line in split_lines(stream, limit):
                yield line
        return
    while True:  # a terminal: read in a thread
        raw = await trio.to_thread.run_sync(sys.stdin.buffer.readline, limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            yield TooLong(raw[:limit])
            while raw and not raw.endswith(b"\n"):
                raw = await trio.to_thread.run_sync(sys.stdin.buffer.readline, 65536)
            continue
        yield raw.rstrip(b"\n")


async def split_lines(stream: trio.abc.ReceiveStream, limit: int) -> AsyncIterator[bytes]:
    """Split a byte stream into lines, in memory bounded by ``limit``."""
    buffer = b""
    skipping = False  # inside an over-long line: drop bytes up to its newline
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[:end], buffer[end + 1:]
            if skipping:
                skipping = False
                continue
            if len(line) > limit:
                yield TooLong(line[:limit])
                continue
            yield line
        if len(buffer) > limit:
            if not skipping:
                yield TooLong(buffer[:limit])
                skipping = True
            buffer = b""
    if buffer.strip() and not skipping:
        yield buffer


def stdout_emit(msg: dict[str, Json]) -> None:
    sys.stdout.write(_dumps(msg) + "\n")
    sys.stdout.flush()


async def serve(target: InProcessTarget, variant: str, emit: Emit = stdout_emit,
                capabilities: tuple[str, ...] = CAPABILITIES,
                footprints: Footprints | None = None) -> None:
    """Serve ``target`` on stdin/stdout until ``bye`` or end of input."""
    async with target:
        server = Server(target, emit, variant, capabilities, footprints)
        async for line in stdin_lines():
            if not line.strip():
                continue
            if not await server.handle(line):
                break


__all__ = ["CAPABILITIES", "Emit", "Server", "TooLong", "serve", "split_lines", "stdin_lines",
           "stdout_emit"]

