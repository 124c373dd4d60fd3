"""The conformance vectors: up to date, well formed, and true of the reference.

- ``meerkat-ref vectors --check`` regenerates every file from the model (and
  the explorer) and fails on any difference from the checked-in ones.
- Every file satisfies ``spec/vectors.schema.json`` (hand-written validator,
  ``meerkat_ref.conform._schema``).
- Every sequential vector, replayed from the *files* against the reference
  ``PersistentSessionService`` (or the ephemeral one) over a ``MemoryStore``
  with a ``LogicalClock`` and ``counter_ids`` -- served in process through the
  adapter's command table -- gives exactly the expected results (the hooks
  cases' partial expectations: the keys they list).
- Every concurrent vector's schedule, replayed with the explorer's
  ``ReplayStrategy``, reproduces its run on the seed variant step for step
  with exactly the expected violations, and the reference, following the
  same schedule where its scheduling points allow, violates nothing.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from meerkat_ref.cli import main
from meerkat_ref.oracle.check import run_once
from meerkat_ref.oracle.engine import Choice, ReplayStrategy, get_scenario
from meerkat_ref.oracle.engine._cases import SEED, example_cases, matches, random_cases
from meerkat_ref.oracle.server import Server
from meerkat_ref.oracle.targets import dumps
from meerkat_ref.registry import SERVICE_COMMANDS
from meerkat_ref.specgen._schema import SchemaError, errors
from meerkat_ref.specgen.vectors import differences, generate
from meerkat_ref.variants import Variant

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"
SCHEMA = json.loads((ROOT / "spec" / "vectors.schema.json").read_text())
FILES = ("sequential-curated.json", "sequential-random.json", "concurrent.json")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


@cache
def generated() -> dict[str, str]:
    return generate()


def sequential_cases() -> list[dict[str, Any]]:
    return [c for name in FILES[:2] for c in load(name)["cases"]]


# -- up to date -------------------------------------------------------------------------


def test_checked_in_vectors_are_what_the_model_generates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["vectors", "--check", "--out", str(VECTORS)]) == 0, capsys.readouterr().err
    assert sorted(generated()) == sorted(FILES)


def test_check_fails_on_any_difference(tmp_path: Path) -> None:
    for name, text in generated().items():
        (tmp_path / name).write_text(text)
    assert differences(tmp_path, generated()) == []
    doc = json.loads((tmp_path / "sequential-curated.json").read_text())
    doc["cases"][0]["steps"][0]["expect"] = {"error": "SESSION_BUSY"}
    (tmp_path / "sequential-curated.json").write_text(json.dumps(doc))
    (tmp_path / "concurrent.json").unlink()
    problems = differences(tmp_path, generated())
    assert len(problems) == 2
    assert any("sequential-curated.json: differs" in p for p in problems)
    assert any("concurrent.json: missing" in p for p in problems)


def test_random_sequences_come_from_a_fixed_seed() -> None:
    assert random_cases() == random_cases()  # random.Random(SEED + i), drawn at generation
    assert load("sequential-random.json")["seed"] == SEED
    names = [c["name"] for c in load("sequential-random.json")["cases"]]
    assert names == [f"random-{SEED + i}" for i in range(len(names))]


# -- well formed ------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_vector_files_satisfy_the_schema(name: str) -> None:
    assert errors(SCHEMA, load(name)) == []


def test_the_schema_validator_rejects_what_it_should() -> None:
    doc = load("sequential-curated.json")
    bad = copy.deepcopy(doc)
    del bad["format"]
    bad["cases"][0]["capacity"] = 0
    bad["cases"][0]["steps"][0]["expect"] = {"ok": 1, "error": "SESSION_BUSY"}
    bad["cases"][1]["steps"][0]["op"]["cmd"] = "frobnicate"
    bad["cases"][2]["steps"][0]["checks"] = []
    bad["cases"][3]["steps"][0]["op"]["host_mode"] = 1
    found = "\n".join(errors(SCHEMA, bad))
    for fragment in ("missing 'format'", "below 1", "matches none of anyOf",
                     "fewer than 1 items", "expected boolean"):
        assert fragment in found
    concurrent = copy.deepcopy(load("concurrent.json"))
    concurrent["cases"][0]["expected"]["reference"]["violations"] = ["ARCHIVE-FINAL"]
    assert errors(SCHEMA, concurrent)
    with pytest.raises(SchemaError):
        errors({"type": "string", "format": "uuid"}, "x")


def test_curated_vectors_cover_every_operation_and_error_code() -> None:
    cmds: set[str] = set()
    results: set[str] = set()
    for case in load("sequential-curated.json")["cases"]:
        for step in case["steps"]:
            for cmd in step.get("at_once", [step["op"]] if "op" in step else []):
                cmds.add(cmd["cmd"])
            expect = step.get("expect", [])
            expects = expect if isinstance(expect, list) else [expect]
            for r in expects + [c["result"] for c in step.get("completed", [])]:
                results.add(r["error"] if "error" in r else next(iter(r)))
    assert cmds == set(SERVICE_COMMANDS)
    assert {
        "ok", "pending", "crashed", "AGENT_ERROR", "SESSION_NOT_FOUND", "SESSION_BUSY",
        "SESSION_NOT_RUNNING", "SESSION_PERSISTENCE_DISABLED", "INVALID_ARGUMENT", "BAD_REQUEST",
    } <= results
    names = {c["name"] for c in load("sequential-curated.json")["cases"]}
    assert {c.name for c in example_cases()} == names


# -- true of the reference --------------------------------------------------------------


class _Replay:
    """Feed one case's commands to an in-process adapter serving the reference."""

    def __init__(self, server: Server, out: list[dict[str, Any]]) -> None:
        self.out = out
        self.adapter = server
        self.next = 0
        self.news: dict[str, dict[str, Any]] = {}  # the events the step's settles reported

    def rid(self) -> str:
        self.next += 1
        return f"r{self.next}"

    async def send(self, msg: dict[str, Any]) -> None:
        await self.adapter.handle(dumps(msg))

    def answers(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in self.out if m.get("id") is not None}


def _result(answer: dict[str, Any]) -> dict[str, Any]:
    if "ok" in answer:
        return {"ok": answer["ok"]}
    if "crashed" in answer:
        return {"crashed": True}
    return {"error": answer["error"]["code"]}


def _canon(results: list[Any]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in results)


async def replay_sequential(case: dict[str, Any]) -> None:
    out: list[dict[str, Any]] = []
    async with Variant.parse("reference").target() as target:
        await _replay(case, _Replay(Server(target, out.append, "reference"), out))


async def _settle(r: _Replay) -> list[str]:
    """Send settle, asking for the events too; the labels parked."""
    rid = r.rid()
    await r.send({"id": rid, "cmd": "settle", "events": True})
    answer = r.answers()[rid]["ok"]
    for sid, news in answer["events"].items():  # put a step's settles together [EVENTS]
        got = r.news.setdefault(sid, {"events": []})
        got["events"] += news["events"]
        if news.get("lagged"):
            got["lagged"] = got.get("lagged", 0) + news["lagged"]
        if news.get("ended"):
            got["ended"] = True
    return [p["task"] for p in answer["parked"]]


async def _hook(step: dict[str, Any], r: _Replay, parked: list[str]) -> list[str]:
    """A hooks step, as spec/ADAPTER.md section 7 says to replay it."""
    if "control" in step:
        await r.send({"id": r.rid(), "cmd": "control", "points": step["control"]})
    elif "release" in step:
        assert step["release"] in parked, f"{step['release']} is not parked: {parked}"
        await r.send({"id": r.rid(), "cmd": "release", "task": step["release"]})
    elif "exit" in step:
        await r.send({"id": r.rid(), "cmd": "exit"})
    else:
        for _ in range(200):
            free = [label for label in parked if label not in step["drive"]["hold"]]
            if not free:
                return parked
            await r.send({"id": r.rid(), "cmd": "release", "task": free[0]})
            parked = await _settle(r)
        raise AssertionError("drive: tasks never came to rest")
    return await _settle(r)


async def _replay(case: dict[str, Any], r: _Replay) -> None:
    opened = r.rid()
    await r.send({"id": opened, "cmd": "open", "capacity": case["capacity"],
                  "persistent": case["persistent"]})
    if "open" in case:  # the service refuses this capacity: the open's answer is the case
        assert _result(r.answers()[opened]) == case["open"], case["name"]
        assert not case["steps"]
        await r.send({"id": r.rid(), "cmd": "bye"})
        return
    pending: dict[str, str | None] = {}
    parked: list[str] = []
    try:
        for index, step in enumerate(case["steps"]):
            where = f"{case['name']} step {index} {step['model']}"
            r.news = {}
            expects = step["expect"] if "at_once" in step else [step.get("expect")]
            waits_on = next((e["pending"] for e in expects if e and "pending" in e), None)
            if "op" in step and waits_on is None and "session" in step["op"]:
                waits_on = step["op"]["session"]
            rids: list[str] = []
            if "at_once" in step:
                subs = [{"id": r.rid(), **cmd} for cmd in step["at_once"]]
                await r.send({"id": r.rid(), "cmd": "at_once", "commands": subs})
                rids = [s["id"] for s in subs]
                parked = await _settle(r)
            elif "op" in step:
                rids = [r.rid()]
                task = {"task": step["task"]} if "task" in step else {}
                await r.send({"id": rids[0], **step["op"], **task})
                parked = await _settle(r)
            else:
                parked = await _hook(step, r, parked)
            answers = r.answers()
            got: list[Any] = []
            for rid in rids:
                if rid in answers:
                    got.append(_result(answers[rid]))
                else:
                    pending[rid] = waits_on
                    got.append({"pending": waits_on})
            completed = []
            for rid in [p for p in pending if p not in rids and p in answers]:
                completed.append({"session": pending.pop(rid), "result": _result(answers[rid])})
            completed.sort(key=lambda c: str(c["session"]))
            if "at_once" in step:
                assert _canon(got) == _canon(expects), f"{where}: got {got}"
            elif "op" in step:  # a hooks case's expectation may list only some keys
                assert matches(expects[0], got[0]), f"{where}: got {got}"
                assert "hooks" in case or got == expects, f"{where}: got {got}"
            assert completed == step.get("completed", []), f"{where}: completed {completed}"
            assert r.news == step.get("events", {}), f"{where}: events {r.news}"
    finally:
        await r.send({"id": r.rid(), "cmd": "bye"})


@pytest.mark.parametrize("name", FILES[:2])
async def test_sequential_vectors_hold_for_the_reference(name: str) -> None:
    cases = load(name)["cases"]
    for case in cases:
        await replay_sequential(case)


@pytest.mark.parametrize("index", range(4))
def test_concurrent_vectors_replay_on_the_seed_and_the_reference(index: int) -> None:
    case = load("concurrent.json")["cases"][index]
    scenario = get_scenario(case["scenario"])
    choices = [Choice.from_json(c) for c in case["schedule"]]
    seed_variant = Variant.parse(case["expected"]["seed"]["variant"])
    seed = run_once(seed_variant.target(store=case["store"]), scenario, ReplayStrategy(choices))
    assert sorted({v.rule for v in seed.violations}) == case["expected"]["seed"]["violations"]
    steps = [{"task": s.label, "kind": s.kind} for s in seed.steps[: len(seed.choices)]]
    assert steps == [{"task": s["task"], "kind": s["kind"]} for s in case["steps"]]
    reference = run_once(Variant.parse("reference").target(store=case["store"]), scenario,
                         ReplayStrategy(choices, lenient=True))
    assert [v.rule for v in reference.violations] == case["expected"]["reference"]["violations"]
    assert not reference.aborted
