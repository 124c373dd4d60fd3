"""Conformance vectors, generated: the model's worked examples and the explorer's counterexamples.

    meerkat-ref vectors [--out spec/vectors] [--check]

Generated, never written by hand, and checked in (``spec/vectors/``), so a port
in any language can replay them without Python:

``sequential-curated.json``
    The model's worked examples (``models/examples.py``), each step's expected
    result computed by ``models.sessions.step``; the malformed inputs; and the
    hooks cases (``"hooks": true``), which steer a race through the scheduling
    hooks and state by hand the outcome the rule they pin requires.
``sequential-random.json``
    Pseudo-random sequences drawn from the model's state with
    ``random.Random(SEED + i)``: fixed, so the file never changes unless the
    model or the generator does.
``concurrent.json``
    For each of the seed's four windows, the explorer's minimal
    counterexample (variant ``seed-0.4.0:<window>``): the scenario (its spec,
    and each client's calls), the schedule (which task ran at each scheduling
    point), and the expected outcome -- the reference passes (no violations),
    the seed variant violates the listed rules.

The format is ``meerkat-ref/vectors@1``, documented by ``spec/vectors.schema.json``
and ``spec/ADAPTER.md``; commands and results are the adapter protocol's.
``--check`` regenerates everything in memory and exits 1 if any file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from ..oracle.engine import SCENARIOS, RunOutcome, find_counterexample, get_scenario
from ..oracle.engine._cases import (
    SEED,
    Case,
    example_cases,
    expected_steps,
    random_cases,
)
from ..oracle.targets import VECTORS_FORMAT
from ..registry import to_wire
from ..registry._values import Json
from ..testing import Window
from ..variants import Variant

GENERATOR = "meerkat-ref vectors"
CONTRACT = "meerkat-session 0.4.0"


def case_json(case: Case) -> dict[str, Json]:
    out: dict[str, Json] = {
        "name": case.name,
        "about": case.about,
        "capacity": case.capacity,
        "persistent": case.persistent,
    }
    if case.hooks:
        out["hooks"] = True
    if case.refused:
        out["open"] = {"error": case.refused}  # the service refuses this capacity [INPUT]
    out["steps"] = [s.to_json() for s in expected_steps(case)]
    return out


def _header(kind: str) -> dict[str, Json]:
    return {
        "format": VECTORS_FORMAT,
        "kind": kind,
        "generator": GENERATOR,
        "contract": CONTRACT,
        "model": "models/sessions.py",
    }


def sequential_doc(
    cases: Sequence[Case], kind: str = "sequential", seed: int | None = None
) -> dict[str, Json]:
    doc = _header(kind)
    if seed is not None:
        doc["seed"] = seed
    doc["cases"] = [case_json(c) for c in cases]
    return doc


# -- concurrent vectors (the explorer's counterexamples) -------------------------------------


def window_counterexample(window: Window, store: str = "memory", max_bound: int = 2,
                          store_dir: str | None = None) -> tuple[RunOutcome | None, int, float]:
    """The minimal counterexample through ``window`` opened alone, as the explorer finds it.

    Scenarios built for the window first, crash scenarios skipped; each
    searched with bounds 0, 1, ... ``max_bound`` (so the first found has the
    fewest preemptions).  Returns (outcome or None, schedules run, seconds).
    """
    variant = Variant.parse(f"seed-0.4.0:{window.value}")
    ordered = sorted(SCENARIOS, key=lambda s: window.value not in s.windows)

    async def main() -> tuple[RunOutcome | None, int, float]:
        tried, seconds = 0, 0.0
        async with variant.target(store=store, store_dir=store_dir) as target:
            for scenario in ordered:
                if scenario.crashes:
                    continue
                found, n, t = await find_counterexample(
                    target, scenario, max_bound=max_bound, store=store
                )
                tried, seconds = tried + n, seconds + t
                if found is not None:
                    return found, tried, seconds
        return None, tried, seconds

    return trio.run(main)


def concurrent_cases() -> list[dict[str, Json]]:
    cases: list[dict[str, Json]] = []
    for window in Window:
        found, _, _ = window_counterexample(window)
        if found is None:
            raise AssertionError(f"the explorer found no counterexample through {window.value}")
        scenario = get_scenario(found.scenario)
        background = {name for name, _ in scenario.background}
        setup: list[Json] = []
        bg: dict[str, list[Json]] = {}
        clients: dict[str, list[Json]] = {name: [] for name, _ in scenario.clients}
        operations: list[Json] = []
        for call in found.history:
            if call.client in ("post", "process"):
                continue
            cmd = to_wire(call.op)
            if call.client == "setup":
                setup.append(cmd)
            elif call.client in background:
                bg.setdefault(call.client, []).append(cmd)
            else:
                clients.setdefault(call.client, []).append(cmd)
            operations.append({"client": call.client, **cmd, "invoked": call.invoked,
                               "responded": call.responded, "result": call.result})
        cases.append({
            "name": f"window-{window.number}-{window.value}",
            "window": window.value,
            "scenario": scenario.name,
            "about": scenario.about,
            "capacity": scenario.capacity,
            "store": "memory",
            "spec": scenario.to_spec(),
            "setup": setup,
            "background": bg,
            "clients": clients,
            "operations": operations,
            "schedule": [c.to_json() for c in found.choices],
            "steps": [
                {"task": s.label, "kind": s.kind, "session": _session_of(s.session)}
                for s in found.steps[: len(found.choices)]
            ],
            "expected": {
                "reference": {"violations": []},
                "seed": {
                    "variant": f"seed-0.4.0:{window.value}",
                    "violations": sorted({v.rule for v in found.violations}),
                },
            },
        })
    return cases


def _session_of(label: str | None) -> str | None:
    """The explorer's short label ``s1`` as a full id."""
    if label is None:
        return None
    import uuid

    return str(uuid.UUID(int=int(label[1:], 16)))


def concurrent_doc() -> dict[str, Json]:
    doc = _header("concurrent")
    doc["cases"] = concurrent_cases()
    return doc


# -- files -----------------------------------------------------------------------------------


def render(value: Json, depth: int = 0, collapse: int = 4) -> str:
    """JSON, indented down to ``collapse`` levels, each deeper value on one line."""
    pad = " " * depth
    flat = isinstance(value, list) and not any(isinstance(v, dict | list) for v in value)
    if depth >= collapse or not isinstance(value, dict | list) or not value or flat:
        return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))
    inner = " " * (depth + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(k)}: {render(v, depth + 1, collapse)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + render(v, depth + 1, collapse) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def generate() -> dict[str, str]:
    """Every vector file: name -> text."""
    docs = {
        "sequential-curated.json": sequential_doc(example_cases()),
        "sequential-random.json": sequential_doc(random_cases(), seed=SEED),
        "concurrent.json": concurrent_doc(),
    }
    return {name: render(doc) + "\n" for name, doc in docs.items()}


def differences(out: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for name, text in files.items():
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what the model generates")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meerkat-ref vectors")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def default_out(check: bool) -> Path:
    """Where the vectors are without ``--out``: ``spec/vectors`` here, or, to ``--check``
    outside a clone, the installed copy (the oracle's own)."""
    here = Path("spec/vectors")
    if check and not here.is_dir():
        from .._spec import spec_dir

        return spec_dir() / "vectors"
    return here


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where the vector files go (default: spec/vectors; with --check and no "
        "spec/vectors here, the installed vectors)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from what is generated",
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out is not None else default_out(args.check)
    files = generate()
    if args.check:
        problems = differences(out, files)
        for problem in problems:
            print(f"meerkat-ref vectors: {problem}", file=sys.stderr)
        if problems:
            print("regenerate with: meerkat-ref vectors --out " + str(out), file=sys.stderr)
            return 1
        print(f"{len(files)} vector files in {out} are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    cases = sum(len(json.loads(t)["cases"]) for t in files.values())
    print(f"wrote {len(files)} vector files ({cases} cases) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
