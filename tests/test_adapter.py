"""The adapter protocol: the reference adapter, and ``meerkat-ref conform`` judging adapters.

CI proof of issue 5: ``conform`` passes the reference adapter and fails the
seed-faithful one, naming ARCHIVE-FINAL with a counterexample that replays
exactly (a concurrent vector's schedule, driven through the scheduling
hooks).  Then the protocol's edges: the adapter's own answers to bad lines,
hooks, ``at_once`` and ``restart``; and the oracle facing adapters that
print garbage, die, hang or answer nonsense -- each a clear protocol error
naming the line or command, with the results found before it kept.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ADAPTER_TIMEOUT, adapter_with

from meerkat_ref.cli import main
from meerkat_ref.oracle.conform import Options, conform, load_concurrent, renumber
from meerkat_ref.oracle.server import Server
from meerkat_ref.oracle.targets import dumps
from meerkat_ref.specgen._schema import errors
from meerkat_ref.variants import Variant

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"
SCHEMA = json.loads((ROOT / "spec" / "adapter.schema.json").read_text())
PYTHON = shlex.quote(sys.executable)
REFERENCE = f"{PYTHON} -m meerkat_ref.adapter"
SEED = f"{PYTHON} -m meerkat_ref.adapter --variant seed-0.4.0"
SMALL = ["--random-cases", "4", "--search-runs", "4", "--free-runs", "4", "--max-schedules", "20",
         "--vectors", str(VECTORS), "--timeout", str(ADAPTER_TIMEOUT)]
S1 = "00000000-0000-0000-0000-000000000001"


def valid(kind: str, line: dict[str, Any]) -> list[str]:
    return errors({"$ref": f"#/$defs/{kind}", "$defs": SCHEMA["$defs"]}, line, SCHEMA)


# -- conform against the reference and the seed -----------------------------------------


def test_conform_passes_the_reference_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--adapter", REFERENCE, *SMALL]) == 0
    out = capsys.readouterr().out
    assert "variant reference, capabilities: points, faults, placement, events" in out
    for phase in ("sequential vectors", "random sequences (seed 1)",
                  "concurrent vectors (hooks)", "concurrent search (hooks)",
                  "concurrent free-running"):
        assert phase in out
    for clause in ("ARCHIVE-FINAL", "LIST-ORDER", "TURN-BUSY", "LINEARIZABLE", "INPUT", "EVENTS"):
        row = next(line for line in out.splitlines() if line.startswith(clause + " "))
        assert row.split()[-1] == "ok" and int(row.split()[1]) > 0
    assert out.rstrip().splitlines()[-1].startswith("PASS")


def test_conform_fails_the_seed_naming_archive_final(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--adapter", SEED, *SMALL, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["hello"]["variant"] == "seed-0.4.0"
    assert report["clauses"]["ARCHIVE-FINAL"]["failed"] > 0
    failure = next(f for f in report["failures"] if f["clause"] == "ARCHIVE-FINAL")
    # A counterexample that replays exactly: driven through the hooks.
    assert failure["phase"] in ("concurrent vectors (hooks)", "concurrent search (hooks)")
    assert failure["replay"].startswith("controlled")
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["concurrent vectors (hooks)"]["failures"] >= 2  # windows 1 and 2, for sure
    lines = [json.loads(line) for line in failure["lines"]]
    assert lines[0] == {"id": "1", "cmd": "open", "capacity": 2, "persistent": True}
    assert {"cmd": "control", "points": True} in [
        {k: v for k, v in m.items() if k != "id"} for m in lines
    ]
    assert any(m["cmd"] == "release" for m in lines) and failure["schedule"]
    for line in lines:
        assert valid("oracleLine", line) == [], line
    # The seed's other windows show up as well, each under its own clause; a sequential
    # difference comes shrunk to a few lines.
    for clause in ("ARCHIVE-STOP", "CHECKPOINT", "LINEARIZABLE"):
        assert report["clauses"][clause]["failed"] > 0, clause
    stop = next(f for f in report["failures"] if f["clause"] == "ARCHIVE-STOP")
    assert stop["phase"] == "sequential vectors" and len(stop["lines"]) <= 6
    assert "expected completed" in stop["message"] and "AGENT_ERROR" in stop["message"]


def test_a_window_alone_fails_under_its_clause() -> None:
    cases = load_concurrent(VECTORS / "concurrent.json")
    opts = Options(random_cases=0, search_runs=0, free_runs=0, max_schedules=0,
                   timeout=ADAPTER_TIMEOUT)
    window1 = conform([sys.executable, "-m", "meerkat_ref.adapter", "--variant",
                       "seed-0.4.0:save-after-turn"], opts, cases)
    assert set(window1.failed) == {"ARCHIVE-FINAL", "LINEARIZABLE"}
    text = window1.text()
    assert "FAIL ARCHIVE-FINAL" in text and "window-1-save-after-turn" in text
    assert "schedule (16 steps): c:turn, c:turn, session s1" in text


# -- the adapter's side of the protocol -------------------------------------------------


class InProcess:
    def __init__(self, server: Server, out: list[dict[str, Any]]) -> None:
        self.out = out
        self.server = server

    async def send(self, line: str | dict[str, Any]) -> list[dict[str, Any]]:
        before = len(self.out)
        await self.server.handle(line if isinstance(line, str) else dumps(line))
        return self.out[before:]

    def answer(self, rid: str) -> dict[str, Any]:
        return next(m for m in self.out if m.get("id") == rid)


@contextlib.asynccontextmanager
async def serving(variant: str = "reference") -> AsyncIterator[InProcess]:
    """The reference adapter's server, in this process, fed lines by the test."""
    out: list[dict[str, Any]] = []
    async with Variant.parse(variant).target() as target:
        yield InProcess(Server(target, out.append, variant), out)


async def test_bad_lines_get_protocol_errors_naming_them() -> None:
    async with serving() as a:
        assert await a.send("not json") == [{"id": None, "error": {
            "code": "BAD_REQUEST", "message": "line 1: not JSON: 'not json'"}}]
        assert (await a.send("[1]"))[0]["error"]["code"] == "BAD_REQUEST"
        assert (await a.send({"cmd": "hello"}))[0]["id"] is None
        assert (await a.send({"id": "1", "cmd": "read", "session": S1}))[0]["error"][
            "code"] == "NOT_OPEN"
        await a.send({"id": "2", "cmd": "open", "capacity": 1})
        unknown = (await a.send({"id": "3", "cmd": "rm -rf /"}))[0]["error"]
        assert unknown == {"code": "UNKNOWN_COMMAND",
                           "message": "request 3: unknown command 'rm -rf /'"}
        missing = (await a.send({"id": "4", "cmd": "start_turn", "session": S1}))[0]["error"]
        assert missing == {"code": "BAD_REQUEST", "message": "start_turn: missing field 'prompt'"}
        typed = (await a.send({"id": "5", "cmd": "list", "limit": "3"}))[0]["error"]
        assert typed["code"] == "BAD_REQUEST" and "'limit' must be int" in typed["message"]
        malformed = (await a.send({"id": "6", "cmd": "read", "session": "../etc"}))[0]
        assert malformed["error"]["code"] == "INVALID_ARGUMENT"
        # A capacity is the service's to refuse [INPUT]; only a missing or huge one is the
        # adapter's (BAD_REQUEST).
        for rid, capacity in (("7", 0), ("8", True), ("9", 1.5), ("10", None)):
            refused = (await a.send({"id": rid, "cmd": "open", "capacity": capacity}))[0]
            assert refused["error"]["code"] == "INVALID_ARGUMENT", refused
        assert (await a.send({"id": "11", "cmd": "open", "capacity": 10_001}))[0]["error"][
            "code"] == "BAD_REQUEST"
        assert (await a.send({"id": "12", "cmd": "open"}))[0]["error"]["code"] == "BAD_REQUEST"
        for line in a.out:
            assert valid("adapterLine", line) == [], line


async def test_hooks_park_announce_release_and_fault() -> None:
    async with serving() as a:
        await a.send({"id": "1", "cmd": "open", "capacity": 2})
        await a.send({"id": "2", "cmd": "control", "points": True})
        events = await a.send({"id": "3", "cmd": "create", "prompt": "p", "task": "c:me"})
        settle = (await a.send({"id": "4", "cmd": "settle"}))[-1]
        parked = settle["ok"]["parked"]
        assert parked == [{"task": "c:me", "kind": "agent.step", "session": S1}]
        assert events == [] and {"event": "point", **parked[0]} in a.out
        assert (await a.send({"id": "5", "cmd": "release", "task": "nobody"}))[0]["error"][
            "code"] == "NOT_PARKED"
        kinds = []
        for n in range(6, 60, 2):
            parked = (await a.send({"id": str(n + 1), "cmd": "settle"}))[-1]["ok"]["parked"]
            if not parked:
                break
            first = parked[0]
            kinds.append(first["kind"])
            fault = first["kind"] == "store.save"
            await a.send({"id": str(n), "cmd": "release", "task": first["task"], "fault": fault})
        assert "store.save" in kinds
        assert a.answer("3")["error"]["code"] == "SESSION_STORE_ERROR"  # the injected fault
        for line in a.out:
            assert valid("adapterLine", line) == [], line


async def test_at_once_and_restart() -> None:
    async with serving() as a:
        await a.send({"id": "1", "cmd": "open", "capacity": 1})
        await a.send({"id": "2", "cmd": "at_once", "commands": [
            {"id": "3", "cmd": "create", "prompt": "a", "initial_turn": "defer"},
            {"id": "4", "cmd": "create", "prompt": "a", "initial_turn": "defer"},
            {"id": "5", "cmd": "restart"},
            {"cmd": "read", "session": S1},
        ]})
        await a.send({"id": "6", "cmd": "settle"})
        assert a.answer("2") == {"id": "2", "ok": None}
        assert a.answer("5")["error"]["code"] == "BAD_REQUEST"  # restart is not a call
        assert any(m.get("id") is None for m in a.out)  # the sub-command without an id
        got = sorted(json.dumps(a.answer(r)) for r in ("3", "4"))
        assert sum("Max sessions reached" in g for g in got) == 1  # exactly one refused
        await a.send({"id": "7", "cmd": "start_turn", "session": S1, "prompt": "s",
                      "host_mode": True})
        await a.send({"id": "8", "cmd": "settle"})
        out = await a.send({"id": "9", "cmd": "restart"})
        assert out == [{"id": "7", "crashed": True}, {"id": "9", "ok": None}]
        await a.send({"id": "10", "cmd": "load_persisted", "session": S1})
        await a.send({"id": "11", "cmd": "settle"})
        assert a.answer("10")["ok"]["message_count"] == 2  # its first checkpoint stayed
        assert (await a.send({"id": "12", "cmd": "bye"})) == [{"id": "12", "ok": None}]


# -- the oracle facing broken adapters --------------------------------------------------


HANGS = "pass  # reads each line and never answers"


def fake(tmp_path: Path, body: str) -> str:
    """A fake adapter: answers hello, then does ``body`` (Python) with each later line."""
    script = tmp_path / "fake_adapter.py"
    script.write_text(
        "import json, sys, time\n"
        "def say(obj):\n"
        "    sys.stdout.write(json.dumps(obj) + '\\n'); sys.stdout.flush()\n"
        "for raw in sys.stdin:\n"
        "    msg = json.loads(raw)\n"
        "    if msg.get('cmd') == 'hello':\n"
        "        say({'id': msg['id'], 'ok': {'protocol': 'meerkat-ref/adapter@1',\n"
        "            'implementation': 'fake', 'version': '0', 'contract': 'x',\n"
        "            'capabilities': []}})\n"
        "        continue\n"
        + "".join("    " + line + "\n" for line in body.strip().splitlines())
    )
    return f"{PYTHON} {shlex.quote(str(script))}"


def run_conform(adapter: str, *extra: str) -> tuple[int, dict[str, Any]]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["conform", "--adapter", adapter, "--timeout", str(ADAPTER_TIMEOUT), "--json",
                     "--vectors", str(VECTORS), *extra])
    report: dict[str, Any] = json.loads(buffer.getvalue())
    return code, report


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("print('hello there', flush=True)",
         "adapter output line 2 is not JSON: 'hello there'"),
        ("say({'id': 'nope', 'ok': None})", "answers no request we sent (id 'nope')"),
        ("say({'id': msg['id'], 'error': {'code': 'OOPS', 'message': ''}})",
         "unknown error code 'OOPS'"),
        ("say({'id': msg['id'], 'ok': None, 'error': {}})", "exactly one of"),
        ("sys.exit(3)", "the adapter exited (status 3)"),
        (HANGS, "no answer within 5s to {\"id\":\"2\",\"cmd\":\"open\""),
    ],
    ids=["garbage", "unknown-id", "unknown-code", "ok-and-error", "dies", "hangs"],
)
def test_broken_adapters_get_a_protocol_error_naming_the_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    # The hanging one is given 5 s: its hello (a bare Python's start, 0.1 s at load 10)
    # comes well within them; the others never wait for the timeout, and keep the guard.
    code, report = run_conform(fake(tmp_path, body), *(["--timeout", "5"] * (body == HANGS)))
    assert code == 1
    assert len(report["protocol_errors"]) == 1
    assert expected in report["protocol_errors"][0], report["protocol_errors"]
    assert report["protocol_errors"][0].startswith("sequential vectors: ")
    assert all(not p["ran"] for p in report["phases"][1:])


def test_results_before_a_protocol_error_are_kept(tmp_path: Path) -> None:
    adapter = adapter_with(tmp_path, "dies_later.py", """
n = len(seen)
if n > 150:
    print('dying', file=sys.stderr, flush=True)
    os._exit(7)
""")
    code, report = run_conform(adapter)
    assert code == 1
    (message,) = report["protocol_errors"]
    assert "the adapter exited (status 7); its stderr ended with: dying" in message
    assert report["phases"][0]["cases"] > 1 and report["phases"][0]["ran"]
    assert report["clauses"]["CREATE"]["checks"] > 0
    assert report["clauses"]["CREATE"]["failed"] == 0


def test_an_adapter_without_hooks_runs_free_only(tmp_path: Path) -> None:
    script = tmp_path / "no_hooks.py"
    script.write_text(
        "import trio\n"
        "from meerkat_ref.oracle.server import Server, stdin_lines\n"
        "from meerkat_ref.variants import Variant\n"
        "import json, sys\n"
        "def emit(msg):\n"
        "    if isinstance(msg.get('ok'), dict) and 'capabilities' in msg['ok']:\n"
        "        msg['ok']['capabilities'] = []\n"
        "    sys.stdout.write(json.dumps(msg) + '\\n'); sys.stdout.flush()\n"
        "async def main():\n"
        "    async with Variant.parse('reference').target() as t:\n"
        "        a = Server(t, emit, 'reference')\n"
        "        async for line in stdin_lines():\n"
        "            if not await a.handle(line):\n"
        "                break\n"
        "trio.run(main)\n"
    )
    code, report = run_conform(f"{PYTHON} {shlex.quote(str(script))}", "--random-cases", "0",
                               "--free-runs", "2")
    assert code == 0, report
    ran = {p["name"]: p for p in report["phases"]}
    assert not ran["concurrent vectors (hooks)"]["ran"]
    assert "no scheduling hooks" in ran["concurrent free-running"]["note"]


def test_a_missing_command_is_a_protocol_failure_naming_it(tmp_path: Path) -> None:
    script = tmp_path / "no_observe.py"
    script.write_text(
        "import json, sys, trio\n"
        "from meerkat_ref.oracle.server import Server, stdin_lines, stdout_emit\n"
        "from meerkat_ref.variants import Variant\n"
        "async def main():\n"
        "    async with Variant.parse('reference').target() as t:\n"
        "        a = Server(t, stdout_emit, 'reference')\n"
        "        async for line in stdin_lines():\n"
        "            msg = json.loads(line)\n"
        "            if msg.get('cmd') == 'observe_store':\n"
        "                stdout_emit({'id': msg['id'], 'error': {'code': 'UNKNOWN_COMMAND',\n"
        "                             'message': 'no observe_store here'}})\n"
        "            elif msg.get('cmd') == 'settle':\n"
        "                msg.pop('store', None)\n"
        "                await a.handle(json.dumps(msg))\n"
        "            elif not await a.handle(line):\n"
        "                break\n"
        "trio.run(main)\n"
    )
    code, report = run_conform(f"{PYTHON} {shlex.quote(str(script))}", "--random-cases", "0",
                               "--search-runs", "0", "--free-runs", "0", "--shrink-budget", "3")
    assert code == 1
    # Sequential: each case using it fails under PROTOCOL, and the run goes on ...
    failure = next(f for f in report["failures"] if f["clause"] == "PROTOCOL")
    assert "answered UNKNOWN_COMMAND: no observe_store here" in failure["message"]
    assert '"cmd":"observe_store"' in failure["lines"][-2]
    assert report["clauses"]["CREATE"]["failed"] == 0
    # ... concurrent runs need it to look at the store: there it stops the run.
    (stopped,) = report["protocol_errors"]
    assert stopped.startswith("concurrent vectors (hooks): ")
    assert "observe_store" in stopped and "no observe_store here" in stopped


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--adapter", "  "]) == 2
    assert main(["conform", "--adapter", "'unclosed"]) == 2
    assert main(["conform", "--adapter", REFERENCE, "--vectors", str(tmp_path)]) == 2
    assert main(["conform", "--adapter", REFERENCE, "--timeout", "0"]) == 2
    err = capsys.readouterr().err
    assert "--adapter is empty" in err and "cannot read" in err


def test_an_adapter_that_cannot_start(tmp_path: Path) -> None:
    code, report = run_conform(str(tmp_path / "no-such-adapter"))
    assert code == 1
    assert "cannot start the adapter" in report["protocol_errors"][0]


def test_counterexample_ids_are_renumbered() -> None:
    lines = ['{"id":"17","cmd":"open","capacity":1}',
             '{"id":"20","cmd":"at_once","commands":[{"id":"18","cmd":"list"}]}']
    assert renumber(lines) == ['{"id":"1","cmd":"open","capacity":1}',
                               '{"id":"2","cmd":"at_once","commands":[{"id":"3","cmd":"list"}]}']


def test_the_client_forgets_answered_requests_run_by_run(tmp_path: Path) -> None:
    """What it keeps stays the size of one run (issue 20: a walk over every request ever
    sent made each schedule of ``check --adapter`` slower than the last), and an answer
    to a forgotten request is still caught as an answer given twice."""
    import trio

    from meerkat_ref.oracle.engine import explore, get_scenario
    from meerkat_ref.oracle.targets import adapter_target

    async def explore_some() -> tuple[int, int, int]:
        async with adapter_target(shlex.split(REFERENCE)) as target:
            report = await explore(target, get_scenario("turns-at-once"), max_schedules=12)
            return report.schedules, target.requests, len(target.client.requests)

    schedules, sent, kept = trio.run(explore_some)
    assert schedules == 12
    assert kept * 6 < sent, f"{kept} of {sent} requests kept after {schedules} schedules"

    adapter = adapter_with(tmp_path, "answers_twice.py", """
opens = [m['id'] for m in seen if m.get('cmd') == 'open']
if msg.get('cmd') == 'open' and len(opens) == 3:
    stdout_emit({'id': opens[0], 'ok': None})
""")
    code, report = run_conform(adapter)
    assert code == 1
    (message,) = report["protocol_errors"]
    assert "answers request 2 a second time" in message, message


def test_a_port_without_faults_passes_conform_with_what_it_cannot_check_listed() -> None:
    """Issue 20: a port whose hello offers only points is never asked for a fault; the
    clauses only faults would reach, and those no conform run checks, are listed as not
    checked, with the reason, not failed."""
    from meerkat_ref.oracle.conform import NEEDS_EVENTS, NEEDS_FAULTS
    from meerkat_ref.oracle.engine import NO_FAULTS

    code, report = run_conform(f"{REFERENCE} --capabilities points", "--random-cases", "2",
                               "--search-runs", "2", "--free-runs", "2", "--max-schedules", "30",
                               "--scenario", "store-faults", "--scenario", "turns-at-once")
    assert code == 0, report["protocol_errors"]
    assert report["ok"] and not report["protocol_errors"]
    assert report["skipped"]["SAVE-FAILED"] == NEEDS_FAULTS
    assert report["skipped"]["EVENTS"] == NEEDS_EVENTS  # hello offered no events: not failed
    assert report["clauses"].get("EVENTS", {}).get("checks", 0) == 0
    assert "TURN" not in report["skipped"] and report["clauses"]["TURN"]["checks"] > 0
    notes = {p["name"]: p["note"] for p in report["phases"]}
    assert "need store faults" in notes["sequential vectors"]
    assert f"store-faults: {NO_FAULTS}" in notes["concurrent search (hooks)"]
    faulted = [r for r in report["searches"] if r["scenario"] == "store-faults"]
    assert faulted and faulted[0]["unchecked"] == NO_FAULTS
