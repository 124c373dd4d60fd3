"""The oracle's side of the adapter protocol: one adapter process, requests in flight, answers.

The adapter is started from an argument vector (``shlex.split`` of the
``--adapter`` text; never a shell).  A reader task parses every line the
adapter writes and checks its shape; anything that breaks the protocol (a
line that is not JSON, an answer to no request, an adapter that exits or goes
quiet) becomes a ``ProtocolError`` whose message names the line or the
command concerned.  What the adapter writes is only ever parsed as JSON and
compared; it is never executed or used as a path.
"""

from __future__ import annotations

import collections
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import trio

from ...registry._values import Json
from ._wire import CONTRACT_CODES, PROTOCOL_CODES, ProtocolError, dumps, show


@dataclass
class Answer:
    """What the adapter answered one request: ``ok``, ``error`` (code, message) or ``crashed``."""

    rid: str
    ok: bool = False
    value: Json = None
    code: str | None = None
    message: str = ""
    crashed: bool = False

    def as_result(self) -> Json:
        """The answer in the vectors' result form: ``{"ok": v}``, ``{"error": c}``, ..."""
        if self.crashed:
            return {"crashed": True}
        if self.code is not None:
            return {"error": self.code}
        return {"ok": self.value}


@dataclass
class _Request:
    rid: str
    line: str
    answer: Answer | None = None
    arrived: int = 0  # sequence number of the answer's arrival


@dataclass
class AdapterClient:
    """One running adapter; ``call`` sends a command and waits for its answer."""

    argv: Sequence[str]
    timeout: float = 10.0
    requests: dict[str, _Request] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)  # lines sent since ``mark``
    events: list[dict[str, Json]] = field(default_factory=list)
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20)
    )
    failure: ProtocolError | None = None
    sent_count: int = 0
    arrivals: int = 0
    _next_id: int = 0
    _proc: trio.Process | None = None
    _changed: trio.Event = field(default_factory=trio.Event)
    _queued: list[bytes] = field(default_factory=list)
    _exited: bool = False

    # -- lifetime -----------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        try:
            self._proc = await nursery.start(
                partial(
                    trio.run_process,
                    list(self.argv),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
        except OSError as exc:
            raise ProtocolError(f"cannot start the adapter {self.argv[0]!r}: {exc}") from None
        nursery.start_soon(self._read_stdout)
        nursery.start_soon(self._read_stderr)

    async def stop(self) -> None:
        """Say ``bye``, close stdin, and give the adapter a moment to exit; then kill it."""
        proc = self._proc
        if proc is None:
            return
        if not self._exited and self.failure is None:
            with trio.move_on_after(min(self.timeout, 5.0)):
                with contextlib.suppress(ProtocolError):
                    await self.call({"cmd": "bye"})
        if proc.stdin is not None:
            with trio.move_on_after(1.0):
                with contextlib.suppress(trio.BrokenResourceError):
                    await proc.stdin.aclose()
        with trio.move_on_after(min(self.timeout, 5.0)):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    def _fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = ProtocolError(message)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _stderr(self) -> str:
        if not self.stderr_tail:
            return ""
        return "; its stderr ended with: " + " | ".join(self.stderr_tail)

    # -- reading -----------------------------------------------------------------------

    async def _lines(self, stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
        buffer = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line
        if buffer:
            yield buffer

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for line in self._lines(self._proc.stderr):
            self.stderr_tail.append(line.decode("utf-8", "replace")[:300])

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        n = 0
        async for line in self._lines(self._proc.stdout):
            n += 1
            if not line.strip():
                continue
            self._take(n, line)
        self._exited = True
        await self._proc.wait()
        if self.failure is None:
            self._fail(f"the adapter exited (status {self._proc.returncode}){self._stderr()}")
        self._wake()

    def _take(self, n: int, line: bytes) -> None:
        where = f"adapter output line {n}"
        try:
            msg = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._fail(f"{where} is not JSON: {show(line)}")
            return
        if not isinstance(msg, dict):
            self._fail(f"{where} is not a JSON object: {show(line)}")
            return
        if "event" in msg:
            event = msg["event"]
            if event != "point":
                self._fail(f"{where}: unknown event {event!r}: {show(line)}")
                return
            if not isinstance(msg.get("task"), str) or not isinstance(msg.get("kind"), str):
                self._fail(f"{where}: a point event needs \"task\" and \"kind\": {show(line)}")
                return
            self.events.append(msg)
            return
        rid = msg.get("id")
        error = msg.get("error")
        if rid is None and isinstance(error, dict):
            self._fail(
                f"{where}: the adapter rejected a line we sent: {error.get('code')}: "
                f"{error.get('message')}"
            )
            return
        if isinstance(rid, str) and rid not in self.requests and self._retired(rid):
            self._fail(f"{where} answers request {rid} a second time: {show(line)}")
            return
        if not isinstance(rid, str) or rid not in self.requests:
            self._fail(f"{where} answers no request we sent (id {rid!r}): {show(line)}")
            return
        request = self.requests[rid]
        if request.answer is not None:
            self._fail(f"{where} answers request {rid} a second time: {show(line)}")
            return
        kinds = [k for k in ("ok", "error", "crashed") if k in msg]
        if len(kinds) != 1:
            self._fail(
                f"{where} must carry exactly one of \"ok\", \"error\", \"crashed\": {show(line)}"
            )
            return
        answer = Answer(rid)
        if "ok" in msg:
            answer.ok, answer.value = True, msg["ok"]
        elif "crashed" in msg:
            if msg["crashed"] is not True:
                self._fail(f"{where}: \"crashed\" must be true: {show(line)}")
                return
            answer.crashed = True
        else:
            if not isinstance(error, dict) or not isinstance(error.get("code"), str):
                self._fail(f"{where}: \"error\" must be {{\"code\": ..., \"message\": ...}}")
                return
            code = error["code"]
            if code not in CONTRACT_CODES and code not in PROTOCOL_CODES:
                self._fail(f"{where}: unknown error code {code!r} (answer to {request.line})")
                return
            answer.code = code
            message = error.get("message", "")
            answer.message = message if isinstance(message, str) else ""
        self.arrivals += 1
        request.answer = answer
        request.arrived = self.arrivals
        self._wake()

    def _retired(self, rid: str) -> bool:
        """An id we sent and forgot once answered (``mark``): ours are 1, 2, 3, ... in order."""
        return rid.isdigit() and rid == str(int(rid)) and 0 < int(rid) <= self._next_id

    # -- writing and waiting ------------------------------------------------------------------

    def mark(self) -> None:
        """Start a new transcript (the lines of one case or run), and forget answered requests.

        Why forget: an explorer sends tens of thousands of requests over one
        adapter; kept, they made every lookup that walks them cost more with
        each schedule explored (issue 20).  A request still unanswered is kept
        until its answer comes (an ``open`` answers the old run's calls
        ``crashed``); an answer to a forgotten one is an answer given twice.
        """
        self.transcript = []
        self.events = []
        self.requests = {rid: r for rid, r in self.requests.items() if r.answer is None}

    async def send(self, cmd: dict[str, Json], *, flush: bool = True) -> str:
        """Send one command with a fresh request id; returns the id.

        ``flush=False`` only queues the line: it goes out with the next
        flushed one, in one write (the adapter still reads them in order).
        """
        if self.failure is not None:
            raise self.failure
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        rid = str(self._next_id)
        line = dumps({"id": rid, **cmd})
        self.requests[rid] = _Request(rid, line)
        self.transcript.append(line)
        self.sent_count += 1
        self._queued.append(line.encode() + b"\n")
        if flush:
            await self.flush()
        return rid

    async def flush(self) -> None:
        """Write every queued line, in one write."""
        if not self._queued:
            return
        assert self._proc is not None and self._proc.stdin is not None
        data, self._queued = b"".join(self._queued), []
        try:
            await self._proc.stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self._settle_exit()
            shown = data.decode("utf-8", "replace").splitlines()[-1]
            status = self._proc.returncode
            if status is not None:  # the same words whether the pipe or the read saw it first
                raise ProtocolError(
                    f"the adapter exited (status {status}) when sent {shown}{self._stderr()}"
                ) from None
            raise ProtocolError(
                f"the adapter stopped reading (it exited?) when sent {shown}{self._stderr()}"
            ) from None

    async def send_at_once(self, cmds: Sequence[dict[str, Json]]) -> tuple[str, list[str]]:
        """Send commands as one ``at_once`` batch; returns its id and the commands' ids."""
        subs: list[Json] = []
        rids: list[str] = []
        for cmd in cmds:
            self._next_id += 1
            rid = str(self._next_id)
            sub = {"id": rid, **cmd}
            self.requests[rid] = _Request(rid, dumps(sub))
            subs.append(sub)
            rids.append(rid)
        return await self.send({"cmd": "at_once", "commands": subs}), rids

    def check_batch(self, rid: str) -> None:
        """An ``at_once`` batch must have been accepted (answered ok) by now."""
        answer = self.requests[rid].answer
        if answer is None or not answer.ok:
            got = "no answer" if answer is None else f"{answer.as_result()} ({answer.message})"
            raise ProtocolError(f"{self.line(rid)} must be answered ok at once; got {got}")

    async def _settle_exit(self) -> None:
        """After a write found the pipe closed: wait for the process to end (within the timeout).

        A process that closed its input is ending; waiting for it (not for a
        fixed moment) gives the same report however busy the machine is.
        """
        assert self._proc is not None
        with trio.move_on_after(self.timeout):
            await self._proc.wait()
        with trio.move_on_after(min(self.timeout, 1.0)):
            while not self._exited:  # and for its last lines (stderr tail) to be read
                await self._changed.wait()

    def answer(self, rid: str) -> Answer | None:
        return self.requests[rid].answer

    def arrived(self, rid: str) -> int:
        return self.requests[rid].arrived

    def line(self, rid: str) -> str:
        return self.requests[rid].line

    async def wait(self, rid: str, timeout: float | None = None) -> Answer:
        await self.flush()
        limit = self.timeout if timeout is None else timeout
        with trio.move_on_after(limit):
            while True:
                answer = self.requests[rid].answer
                if answer is not None:
                    return answer
                if self.failure is not None:
                    raise ProtocolError(
                        f"{self.failure} (while waiting for the answer to {self.line(rid)})"
                    )
                await self._changed.wait()
        raise ProtocolError(f"no answer within {limit:g}s to {self.line(rid)}")

    async def wait_any(self, rids: Sequence[str], timeout: float | None = None) -> None:
        """Return once any of ``rids`` is answered (or raise on failure or timeout)."""
        await self.flush()
        limit = self.timeout if timeout is None else timeout
        with trio.move_on_after(limit):
            while True:
                if any(self.requests[r].answer is not None for r in rids):
                    return
                if self.failure is not None:
                    raise self.failure
                await self._changed.wait()
        shown = "; ".join(self.line(r) for r in rids)
        raise ProtocolError(f"no answer within {limit:g}s to any of: {shown}")

    async def call(self, cmd: dict[str, Json], timeout: float | None = None) -> Answer:
        return await self.wait(await self.send(cmd), timeout)

    async def call_ok(self, cmd: dict[str, Json]) -> Json:
        """A control command that must succeed; anything else is a protocol error."""
        answer = await self.call(cmd)
        if not answer.ok:
            raise ProtocolError(
                f"{self.line(answer.rid)} was answered {answer.as_result()} ({answer.message})"
            )
        return answer.value

    async def settle(self) -> list[dict[str, Json]]:
        """Wait for quiescence; return the parked points the adapter reports."""
        value = await self.call_ok({"cmd": "settle"})
        parked = value.get("parked", []) if isinstance(value, dict) else None
        if not isinstance(parked, list) or not all(
            isinstance(p, dict) and isinstance(p.get("task"), str) for p in parked
        ):
            raise ProtocolError(f"settle must answer {{\"parked\": [...]}}, got {value!r}")
        return parked
