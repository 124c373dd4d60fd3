"""6. Adapter fuzz: every line gets exactly one answer, and the adapter never dies.

    python -m benchmarks.fuzz_adapter [--examples N] [--subprocess N]

Feeds the reference adapter (``python -m meerkat_ref.adapter``, served by
``meerkat_ref.oracle.server``) hostile input and counts what happens:

- **bytes**: random byte strings, split into lines as the transport splits
  them (invalid UTF-8, NUL and control bytes, half a JSON text...);
- **near-valid JSON**: well-formed commands (every command of
  ``spec/ADAPTER.md``) with a few mutations each: a field dropped, retyped or
  duplicated, an unknown field, the id or the command replaced, the object
  wrapped or truncated, bytes spliced in; the values drawn from the nasty
  ones: deep nesting, integers of thousands of digits, ``NaN``/``Infinity``,
  lone surrogates, control characters, very long strings, ...;
- **edges**: the lines of issue 11 (1,000 nested arrays; a 5,000-digit
  integer; a line of several megabytes; end of input right after ``open`` or
  with a host loop in flight).

Drivers.  ``drive_in_process`` runs the server in this process on the very
pipeline ``serve`` uses (``split_lines`` over a byte stream, blank lines
skipped, ``Server.handle``), then ends the input; ``drive_subprocess`` runs
the real adapter process over pipes.  Each returns a ``Tally``: lines sent,
lines answered exactly once, error answers, crashes (an exception out of the
server, a process that exits non-zero or prints a traceback), hangs (no
answer within the timeout), and every line that broke the rule.

Counting.  A line's own answer echoes its id when the line is a JSON object
(as the server's ``json`` reads it) with a non-empty string ``id``; otherwise
it is answered with ``"id": null``, in order.  Sub-commands of an accepted
``at_once`` are answered once each as well (under their id, or ``null``
without one).  The fuzzer never reuses an id (a line whose id was used is not
sent: the protocol makes unique ids the oracle's duty), and a blank line is
not a command (the server skips it).

``tests/test_adapter_fuzz.py`` runs the same strategies under Hypothesis in
CI (bounded by the ``ci`` profile); this command runs more, deterministically
(``derandomize``), and prints the counts recorded in ``README.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from meerkat_ref.oracle.server import Server, split_lines
from meerkat_ref.oracle.targets import MAX_LINE, dumps
from meerkat_ref.variants import Variant

S = [f"00000000-0000-0000-0000-00000000000{n}" for n in (1, 2, 3)]

# -- what a line is, as the server reads it ----------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the rule says a line must be answered with (see the module docstring)."""

    own_id: str | None  # None: answered with "id": null
    sub_ids: tuple[str, ...] = ()  # sub-commands of an at_once with an id
    sub_nulls: int = 0  # sub-commands of an at_once without one
    bye: bool = False  # a well-formed bye: serving stops after it


def _readable_id(value: object) -> str | None:
    if isinstance(value, dict):
        rid = value.get("id")
        if isinstance(rid, str) and rid:
            return rid
    return None


def expect_of(line: bytes) -> Expect:
    """Read ``line`` exactly as the server does (``json.loads``), to know its answers."""
    if len(line) > MAX_LINE:
        return Expect(None)
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):
        return Expect(None)
    own = _readable_id(msg)
    if own is None:
        return Expect(None)
    assert isinstance(msg, dict)
    subs = msg.get("commands")
    if msg.get("cmd") == "at_once" and isinstance(subs, list):
        ids = tuple(i for i in (_readable_id(s) for s in subs) if i is not None)
        nulls = sum(1 for s in subs if _readable_id(s) is None)
        return Expect(own, ids, nulls)
    return Expect(own, bye=msg.get("cmd") == "bye")


def blank(line: bytes) -> bool:
    """A line the server skips (``serve``): not a command, so never answered."""
    return not line.strip()


# -- counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a batch of runs did; ``ok`` when every line was answered exactly once."""

    runs: int = 0
    lines: int = 0  # lines sent (not blank)
    skipped: int = 0  # not sent: an id already used, or after a bye
    answered_once: int = 0
    errors: int = 0  # answers with an error (of lines and sub-commands)
    sub_commands: int = 0
    crashes: int = 0
    hangs: int = 0
    seconds: float = 0.0
    broken: list[str] = field(default_factory=list)  # what broke the rule, for people

    @property
    def ok(self) -> bool:
        return self.answered_once == self.lines and not (self.crashes or self.hangs or self.broken)

    def add(self, other: Tally) -> None:
        for name in ("runs", "lines", "skipped", "answered_once", "errors", "sub_commands",
                     "crashes", "hangs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.broken += other.broken[: max(0, 20 - len(self.broken))]

    def text(self) -> str:
        return (f"{self.runs} runs, {self.lines} lines sent, {self.answered_once} answered "
                f"exactly once, {self.errors} error answers, {self.sub_commands} sub-commands, "
                f"{self.crashes} crashes, {self.hangs} hangs, {self.skipped} not sent "
                f"(reused id or after bye), {self.seconds:.1f} s")


def _shown(line: bytes) -> str:
    text = repr(line[:120])
    return text + (f"... ({len(line)} bytes)" if len(line) > 120 else "")


def plan(lines: Iterable[bytes], bye: bool) -> tuple[list[tuple[bytes, Expect]], int]:
    """The lines to send with what each expects, and how many were left out.

    Left out: blank lines (not commands), a line that reuses an id (the
    oracle's duty, not the adapter's), anything after a well-formed ``bye``.
    ``bye``: end with a ``bye`` of our own (an id no line used), unless one
    already ended the lines.
    """
    used: set[str] = set()
    out: list[tuple[bytes, Expect]] = []
    skipped = 0
    for line in lines:
        if blank(line):
            continue
        expect = expect_of(line)
        ids = [i for i in (expect.own_id, *expect.sub_ids) if i is not None]
        if len(set(ids)) != len(ids) or used & set(ids) or (out and out[-1][1].bye):
            skipped += 1
            continue
        used |= set(ids)
        out.append((line, expect))
    if bye and not (out and out[-1][1].bye):
        rid = next(f"bye{n}" for n in itertools.count() if f"bye{n}" not in used)
        out.append((dumps({"id": rid, "cmd": "bye"}).encode(), Expect(rid, bye=True)))
    return out, skipped


def judge(sent: Sequence[tuple[bytes, Expect]], answers: Sequence[dict[str, Any]],
          nulls_per_line: Sequence[int] | None) -> Tally:
    """Count answers against what each line expects.

    ``nulls_per_line``: the ``"id": null`` answers emitted while each line was
    handled (in process), or ``None`` (a subprocess: checked in total).
    """
    tally = Tally(lines=len(sent))
    by_id: dict[str, list[dict[str, Any]]] = {}
    nulls = 0
    for answer in answers:
        if "event" in answer:
            continue
        if "error" in answer:
            tally.errors += 1
        rid = answer.get("id")
        if rid is None:
            nulls += 1
        else:
            by_id.setdefault(str(rid), []).append(answer)
    known: set[str] = set()
    want_nulls = 0
    for index, (line, expect) in enumerate(sent):
        if expect.own_id is None:
            got = nulls_per_line[index] if nulls_per_line is not None else 1
            want_nulls += 1
        else:
            known.add(expect.own_id)
            got = len(by_id.get(expect.own_id, []))
        if got == 1:
            tally.answered_once += 1
        else:
            tally.broken.append(f"answered {got} times: {_shown(line)}")
        own = by_id.get(expect.own_id or "", [])
        accepted = expect.own_id is not None and len(own) == 1 and "ok" in own[0]
        tally.sub_commands += len(expect.sub_ids) + expect.sub_nulls
        want = 1 if accepted else 0
        for sub in expect.sub_ids:
            known.add(sub)
            if len(by_id.get(sub, [])) != want:
                tally.broken.append(f"sub-command {sub!r} answered "
                                    f"{len(by_id.get(sub, []))} times (want {want}): "
                                    f"{_shown(line)}")
        subs_null = expect.sub_nulls if accepted else 0
        want_nulls += subs_null
        if nulls_per_line is not None and expect.own_id is not None and (
                nulls_per_line[index] != subs_null):
            tally.broken.append(f"{nulls_per_line[index]} null answers (want {subs_null}): "
                                f"{_shown(line)}")
    if nulls_per_line is None and nulls != want_nulls:
        tally.broken.append(f"{nulls} answers with a null id in all (want {want_nulls})")
    stray = sorted(set(by_id) - known)
    if stray:
        tally.broken.append(f"answers to ids never sent: {stray[:5]}")
    return tally


# -- drivers ---------------------------------------------------------------------------------


class _Bytes(trio.abc.ReceiveStream):
    """A byte string as a stream, in chunks (what stdin gives ``split_lines``)."""

    def __init__(self, data: bytes, chunk: int = 65536) -> None:
        self.data = memoryview(data)
        self.chunk = chunk
        self.at = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        piece = bytes(self.data[self.at:self.at + self.chunk])
        self.at += len(piece)
        return piece

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def drive_in_process(lines: Sequence[bytes], *, timeout: float = 30.0,
                           eof: bool = False, store: str = "memory",
                           server: type[Server] = Server) -> Tally:
    """Serve ``lines`` in this process exactly as ``serve`` would, then end the input.

    ``eof``: end the input without a ``bye`` (the server must treat it as one);
    otherwise a final ``bye`` is sent and must be answered too.  ``server``:
    the class serving (a test passes broken ones to show the count has teeth).
    """
    started = time.perf_counter()
    sent, skipped = plan(lines, bye=not eof)
    data = b"".join(line + b"\n" for line, _ in sent)
    answers: list[dict[str, Any]] = []
    nulls = [0] * len(sent)
    crashes = hangs = 0
    current = 0

    def emit(msg: dict[str, Any]) -> None:
        dumps(msg).encode("ascii")  # what stdout_emit writes must be writable
        answers.append(msg)
        if msg.get("id") is None and "event" not in msg:
            nulls[current] += 1

    try:
        with trio.move_on_after(timeout) as guard:
            async with Variant.parse("reference").target(store=store) as target:
                serving = server(target, emit, "reference")
                async for line in split_lines(_Bytes(data), MAX_LINE):
                    if blank(line):
                        continue
                    if not await serving.handle(line):
                        break
                    current += 1
        hangs += guard.cancelled_caught
    except BaseException as exc:  # anything out of the server is a crash
        if not isinstance(exc, Exception | BaseExceptionGroup):
            raise
        crashes += 1
        answers.append({"id": "crash", "error": {"code": "CRASH", "message": repr(exc)}})
    tally = judge(sent, answers, nulls)
    tally.runs, tally.skipped, tally.crashes, tally.hangs = 1, skipped, crashes, hangs
    if crashes:
        tally.broken.append(f"the server raised: {answers[-1]['error']['message'][:300]}")
    tally.seconds = time.perf_counter() - started
    return tally


def drive_subprocess(lines: Sequence[bytes], *, timeout: float = 60.0, eof: bool = True,
                     args: Sequence[str] = ()) -> Tally:
    """Run the real adapter process on ``lines``; then end its input (or send ``bye``)."""
    started = time.perf_counter()
    sent, skipped = plan(lines, bye=not eof)
    data = b"".join(line + b"\n" for line, _ in sent)
    tally = Tally(runs=1, skipped=skipped)
    proc = subprocess.Popen(
        [sys.executable, "-m", "meerkat_ref.adapter", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        tally.hangs = 1
        tally.broken.append(f"no exit within {timeout} s")
    answers: list[dict[str, Any]] = []
    for raw in out.splitlines():
        try:
            answers.append(json.loads(raw))
        except ValueError:
            tally.broken.append(f"stdout line is not JSON: {_shown(raw)}")
    judged = judge(sent, answers, None)
    judged.runs, judged.skipped, judged.hangs = 1, skipped, tally.hangs
    judged.broken = tally.broken + judged.broken
    if proc.returncode != 0 or b"Traceback" in err:
        judged.crashes = 1
        judged.broken.append(f"exit status {proc.returncode}; stderr: "
                             f"{err.decode('utf-8', 'replace')[-600:]}")
    judged.seconds = time.perf_counter() - started
    return judged


# -- strategies ------------------------------------------------------------------------------

ID = object()  # placeholder: a fresh id, numbered when the lines are rendered


def _str(text: str) -> str:
    return json.dumps(text)


TEMPLATES: dict[str, list[tuple[str, Any]]] = {
    "hello": [],
    "open": [("capacity", "3"), ("persistent", "true")],
    "settle": [("store", "true")],
    "control": [("points", "false")],
    "control-on": [("points", "true")],
    "release": [("task", _str("session s1")), ("fault", "false")],
    "release-fault": [("task", _str("c:a")), ("fault", "true")],
    "create": [("prompt", _str("a b")), ("initial_turn", _str("defer")), ("host_mode", "false"),
               ("system_prompt", "null"), ("model", _str("scripted"))],
    "create-host": [("prompt", _str("serve")), ("host_mode", "true")],
    "start_turn": [("session", _str(S[0])), ("prompt", _str("x y")), ("host_mode", "false")],
    "inject": [("session", _str(S[0])), ("text", _str("/compact"))],
    "interrupt": [("session", _str(S[0]))],
    "read": [("session", _str(S[1]))],
    "list": [("offset", "0"), ("limit", "2")],
    "archive": [("session", _str(S[1]))],
    "load_persisted": [("session", _str(S[0]))],
    "cancel_all_checkpointers": [],
    "rearm_all_checkpointers": [],
    "restart": [],
    "observe_store": [],
    "fail_next_save": [],
    "at_once": [],  # its commands are drawn
}
"""A well-formed command of every kind (``bye`` is the driver's), as (field, JSON text)."""

_DEEP = 1000

NASTY: tuple[str, ...] = (
    "null", "true", "false", "0", "-1", "1.5", "-0", "1e400", "-1e400", "NaN", "Infinity",
    "-Infinity", "9" * 5000, "-" + "9" * 5000, "1" + "0" * 4301, '""', '" "', _str("\t\n"),
    '"\\ud800"', '"a\\udfff"', '"\\u0000"', '"\x01\x1f"', '"\\x"', '"unterminated',
    "[]", "{}", "[" * _DEEP + "]" * _DEEP, '{"a":' * _DEEP + "1" + "}" * _DEEP,
    "[" * 50_000 + "]" * 50_000, _str("x" * 200_000), _str("é" * 50_000),
    _str("../../etc/passwd"), _str("00000000-0000-0000-0000-00000000000G"),
    _str("0" * 10_000), _str(S[2].upper()), "[1,2,3]",
)
"""JSON texts (some not JSON at all) that have broken parsers and field checks."""

SPLICES: tuple[bytes, ...] = (
    b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\r",
    b"\x1b[2J", b"\xef\xbb\xbf", b"}", b"{", b'"', b"\\", b",", b":",
)
"""Bytes spliced into a rendered line: invalid UTF-8, an encoded surrogate, a BOM, syntax."""


def _float_text(f: float) -> str:
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    return repr(f)


_nasty = st.one_of(
    st.sampled_from(NASTY),
    st.integers().map(str),
    st.floats().map(_float_text),
    st.text(max_size=40).map(_str),
    st.sampled_from(list(TEMPLATES)).map(_str),
    st.sampled_from(S).map(_str),
)

Pairs = list[tuple[str, Any]]


@dataclass(frozen=True)
class Spec:
    """A line before rendering: its fields (JSON texts) and what happens to its bytes."""

    pairs: Pairs
    shape: str = "object"
    at: int = 0  # truncate / splice: where (modulo the length)
    splice: bytes = b""


def _text(pairs: Pairs, ids: Iterator[str]) -> str:
    parts = []
    for key, value in pairs:
        if value is ID:
            text = _str(next(ids))
        elif isinstance(value, list):  # at_once's commands
            text = "[" + ",".join(_text(v, ids) for v in value) + "]"
        else:
            text = value
        parts.append(f"{_str(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def render(specs: Sequence[Spec], prefix: str = "f") -> list[bytes]:
    """The lines, every ``ID`` placeholder given a fresh id (``f1``, ``f2``, ...)."""
    ids = (f"{prefix}{n}" for n in itertools.count(1))
    out = []
    for spec in specs:
        line = _text(spec.pairs, ids).encode("utf-8", "surrogatepass")
        if spec.shape == "array":
            line = b"[" + line + b"]"
        elif spec.shape == "truncate":
            line = line[: spec.at % max(1, len(line))]
        elif spec.shape == "splice":
            at = spec.at % (len(line) + 1)
            line = line[:at] + spec.splice + line[at:]
        elif spec.shape == "string":
            line = json.dumps(line.decode("utf-8", "replace")).encode()
        out.append(line.replace(b"\n", b" "))
    return out


@st.composite
def _command(draw: st.DrawFn, kinds: Sequence[str] = tuple(TEMPLATES)) -> Pairs:
    kind = draw(st.sampled_from(kinds))
    cmd = kind.split("-")[0]
    pairs: Pairs = [("id", ID), ("cmd", _str(cmd)), *TEMPLATES[kind]]
    if cmd == "at_once":
        subs = draw(st.lists(_command(("create", "start_turn", "read", "archive", "create-host",
                                       "inject", "list")), max_size=4))
        pairs.append(("commands", subs))
    if draw(st.booleans()):
        pairs.append(("task", _str(draw(st.sampled_from(["c:a", "c:b", "session s1"])))))
    return pairs


def _mutate(draw: st.DrawFn, pairs: Pairs) -> None:
    how = draw(st.sampled_from(["drop", "retype", "unknown", "duplicate", "swap-cmd", "sub"]))
    if how == "drop" and pairs:
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    elif how == "retype" and pairs:
        i = draw(st.integers(0, len(pairs) - 1))
        pairs[i] = (pairs[i][0], draw(_nasty))
    elif how == "unknown":
        pairs.append((draw(st.sampled_from(["x", "ID", "Cmd", "", "\x00"])), draw(_nasty)))
    elif how == "duplicate" and pairs:
        pairs.append((pairs[draw(st.integers(0, len(pairs) - 1))][0], draw(_nasty)))
    elif how == "swap-cmd":
        pairs.append(("cmd", _str(draw(st.sampled_from([*TEMPLATES, "bye", "BYE", ""])))))
    elif how == "sub":  # mutate a sub-command of an at_once
        subs = next((v for k, v in pairs if k == "commands" and isinstance(v, list) and v), None)
        if subs is not None:
            _mutate(draw, subs[draw(st.integers(0, len(subs) - 1))])


@st.composite
def mutated(draw: st.DrawFn) -> Spec:
    """A well-formed command with 1..3 mutations of its fields, then maybe of its bytes."""
    pairs = draw(_command())
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, pairs)
    shape = draw(st.sampled_from(["object"] * 6 + ["array", "truncate", "splice", "string"]))
    return Spec(pairs, shape, draw(st.integers(0, 1 << 20)), draw(st.sampled_from(SPLICES)))


def _valid(kind: str) -> st.SearchStrategy[Spec]:
    """An unmutated command: it builds up state (sessions, host loops) for the mutants."""
    return _command((kind,)).map(Spec)


OPEN = Spec([("id", ID), ("cmd", _str("open")), ("capacity", "3")])

near_valid_lines: st.SearchStrategy[list[bytes]] = st.lists(
    st.one_of(mutated(), mutated(), mutated(), mutated(), _valid("create"),
              _valid("create-host"), _valid("start_turn"), _valid("inject"), _valid("at_once"),
              _valid("settle"), _valid("control-on"), _valid("release-fault"), _valid("release")),
    min_size=1, max_size=12,
).map(lambda specs: render([OPEN, *specs]))
"""A session's worth of near-valid lines, after a valid ``open`` (so service calls run)."""

byte_lines: st.SearchStrategy[list[bytes]] = st.lists(
    st.binary(max_size=300), min_size=1, max_size=12,
).map(lambda lines: [b.replace(b"\n", b" ") for b in lines])
"""Random byte strings, one per line."""


def edge_lines() -> list[tuple[str, list[bytes], bool]]:
    """The inputs issue 11 named, each with whether it ends by end of input (not ``bye``)."""
    deep = b"[" * 1000 + b"]" * 1000
    huge = b'{"id":"h","cmd":"open","capacity":' + b"9" * 5000 + b"}"
    host = b'{"id":"c","cmd":"create","prompt":"serve","host_mode":true}'
    (opened,) = render([OPEN], "open")
    return [
        ("1,000 nested arrays (2 KB)", [deep, b'{"id":"after","cmd":"hello"}'], False),
        ("an integer of 5,000 digits", [huge, b'{"id":"after","cmd":"hello"}'], False),
        ("a 10 MB line, then a command", [b"x" * (10 << 20), b'{"id":"after","cmd":"hello"}'],
         False),
        ("end of input right after open", [opened], True),
        ("end of input with a host loop in flight", [opened, host], True),
    ]


# -- the command -----------------------------------------------------------------------------


def fuzz_in_process(strategy: st.SearchStrategy[list[bytes]], examples: int) -> Tally:
    """``examples`` inputs drawn deterministically from ``strategy``, each served in process."""
    total = Tally()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(lines: list[bytes]) -> None:
        total.add(trio.run(drive_in_process, lines))

    one()
    return total


def subprocess_cases(examples: int) -> Tally:
    """The edges, then ``examples`` near-valid inputs, through the real process."""
    total = Tally()
    for _, lines, eof in edge_lines():
        total.add(drive_subprocess(lines, eof=eof))

    if examples <= 0:
        return total

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(near_valid_lines, st.booleans())
    def one(lines: list[bytes], eof: bool) -> None:
        total.add(drive_subprocess(lines, eof=eof))

    one()
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_adapter",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=500,
                        help="inputs per in-process strategy (default 500)")
    parser.add_argument("--subprocess", type=int, default=20,
                        help="near-valid inputs through the real process, after the edges "
                        "(default 20)")
    args = parser.parse_args(argv)
    results = {
        "in process, bytes": fuzz_in_process(byte_lines, args.examples),
        "in process, near-valid JSON": fuzz_in_process(near_valid_lines, args.examples),
        "subprocess (edges + near-valid)": subprocess_cases(args.subprocess),
    }
    failed = False
    for name, tally in results.items():
        print(f"{name}: {tally.text()}")
        for problem in tally.broken[:10]:
            print(f"  BROKEN: {problem}")
        failed |= not tally.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
