"""The adapter never dies on input, and answers every line exactly once (issue 11).

Hypothesis drives the reference adapter's server in process, on the very
pipeline ``serve`` runs (``split_lines`` over a byte stream, blank lines
skipped, ``Server.handle``), with random bytes and with near-valid JSON
(mutated commands, deep nesting, huge numbers, NaN, lone surrogates, control
characters, duplicate and unknown keys, wrong types in every field); a
handful of cases run through the real process (``python -m
meerkat_ref.adapter``) over pipes.  The strategies, drivers and counting are
``benchmarks/fuzz_adapter.py`` (whose command prints the counts in README);
the ``ci`` profile bounds the examples.

Each case before issue 11's fix ended the process with a traceback: 1,000
nested arrays (``RecursionError``), a 5,000-digit integer (``ValueError``),
end of input after ``open`` or with a call in flight (``Cancel scope stack
corrupted``), and a 10 MB line was answered nine times.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, _ROOT)

from benchmarks.fuzz_adapter import (  # noqa: E402
    Tally,
    byte_lines,
    drive_in_process,
    drive_subprocess,
    edge_lines,
    near_valid_lines,
)
from meerkat_ref.oracle.server import Server, TooLong  # noqa: E402
from meerkat_ref.variants import Variant  # noqa: E402

EDGES = edge_lines()


def _ok(tally: Tally) -> None:
    assert tally.ok, tally.broken
    assert tally.lines > 0 and tally.answered_once == tally.lines


@given(byte_lines)
def test_random_bytes_are_each_answered_once(lines: list[bytes]) -> None:
    _ok(trio.run(drive_in_process, lines))


@given(near_valid_lines, st.booleans())
def test_near_valid_commands_are_each_answered_once(lines: list[bytes], eof: bool) -> None:
    _ok(trio.run(lambda: drive_in_process(lines, eof=eof)))


@pytest.mark.parametrize(("name", "lines", "eof"), EDGES, ids=[e[0] for e in EDGES])
async def test_issue_11_inputs_in_process(name: str, lines: list[bytes], eof: bool) -> None:
    tally = await drive_in_process(lines, eof=eof)
    _ok(tally)
    assert tally.lines == len(lines) + (0 if eof else 1)  # every line sent, and our bye


def test_issue_11_inputs_through_the_real_process() -> None:
    """Three processes: the hostile lines then a bye; end of input after open; and with
    a host loop in flight (its call is answered crashed, the exit status is 0)."""
    hostile = [line for _, lines, eof in EDGES if not eof for line in lines]
    _ok(drive_subprocess(hostile, eof=False))
    for _, lines, eof in EDGES:
        if eof:
            _ok(drive_subprocess(lines, eof=True))


@settings(max_examples=3)  # a process each: a handful, the in-process runs do the rest
@given(near_valid_lines)
def test_near_valid_commands_through_the_real_process_on_sqlite(lines: list[bytes]) -> None:
    _ok(drive_subprocess(lines, eof=True, args=("--store", "sqlite")))


# -- the counting has teeth ---------------------------------------------------------------


class _AnswersTooLongTwice(Server):
    async def handle(self, line: bytes | str) -> bool:
        if isinstance(line, TooLong):
            await super().handle(line)
        return await super().handle(line)


class _DiesOnDeepNesting(Server):
    async def handle(self, line: bytes | str) -> bool:
        if isinstance(line, bytes) and line.startswith(b"[[[["):
            raise RecursionError("maximum recursion depth exceeded")
        return await super().handle(line)


class _ForgetsTheLineAfterABadOne(Server):
    skip = False

    async def handle(self, line: bytes | str) -> bool:
        if self.skip:
            self.skip = False
            return True
        self.skip = isinstance(line, bytes) and line.startswith(b'{"id":"h"')
        return await super().handle(line)


@pytest.mark.parametrize(
    ("server", "lines", "broken"),
    [
        (_AnswersTooLongTwice, EDGES[2][1], "answered 2 times"),
        (_DiesOnDeepNesting, EDGES[0][1], "the server raised"),
        (_ForgetsTheLineAfterABadOne, EDGES[1][1], "answered 0 times"),
    ],
    ids=["twice", "crash", "unanswered"],
)
async def test_the_count_catches_a_broken_server(
    server: type[Server], lines: list[bytes], broken: str
) -> None:
    tally = await drive_in_process(lines, server=server)
    assert not tally.ok
    assert any(broken in b for b in tally.broken), tally.broken


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
        (b'{"id":"1","cmd":"open","capacity":' + b"9" * 5000 + b"}", "a number too long"),
        (b'{"id":"\xff"}', "not UTF-8"),
        (b'{"id":', "not JSON"),
    ],
    ids=["deep", "digits", "utf-8", "json"],
)
async def test_an_unreadable_line_says_why(line: bytes, why: str) -> None:
    out: list[dict[str, object]] = []
    async with Variant.parse("reference").target() as target:
        assert await Server(target, out.append, "reference").handle(line)
    (answer,) = out
    assert answer["id"] is None
    error = answer["error"]
    assert isinstance(error, dict) and error["code"] == "BAD_REQUEST"
    assert error["message"].startswith(f"line 1: {why}: ") and len(error["message"]) < 300


async def test_a_huge_id_is_echoed_once_not_again_in_the_message() -> None:
    rid, big = "r" * 500_000, "s" * 500_000
    out: list[dict[str, Any]] = []
    async with Variant.parse("reference").target() as target:
        server = Server(target, out.append, "reference")
        await server.handle(f'{{"id":"{rid}0","cmd":"read","session":"{big}"}}')  # not open
        await server.handle('{"id":"o","cmd":"open","capacity":1}')
        await server.handle(f'{{"id":"{rid}1","cmd":"no such"}}')
        await server.handle(f'{{"id":"{rid}2","cmd":7}}')
        await server.handle(f'{{"id":"{rid}3","cmd":"read","session":"{big}"}}')
    assert [a["id"] for a in out] == [rid + "0", "o", rid + "1", rid + "2", rid + "3"]
    codes = [a["error"]["code"] for a in out if "error" in a]
    assert codes == ["NOT_OPEN", "UNKNOWN_COMMAND", "BAD_REQUEST", "INVALID_ARGUMENT"]
    assert all(len(a["error"]["message"]) < 300 for a in out if "error" in a)
