"""What a conformance run found, per clause, with one minimal counterexample for each failure."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ...registry._values import Json
from ...report._table import aligned_table
from ..engine._clauses import PROTOCOL, clause_ids, not_by_conform, rule_quote
from ..targets import dumps


@dataclass
class Failure:
    clause: str
    phase: str
    case: str
    message: str
    lines: list[str]  # the request lines to send, in order, to replay it
    how: str  # how to replay: each line after the previous answer, or a controlled schedule
    schedule: list[str] = field(default_factory=list)  # the released task at each step
    choices: list[Json] = field(default_factory=list)  # the schedule as ``Choice`` JSON
    scenario: Json = None  # the scenario's spec: with ``choices``, an exact engine replay
    rule: str = ""  # the clause's rule as spec/ states it (``rule_quote``); filled by ``fail``

    def to_json(self) -> dict[str, Json]:
        return {
            "clause": self.clause,
            "rule": self.rule,
            "phase": self.phase,
            "case": self.case,
            "message": self.message,
            "replay": self.how,
            "lines": self.lines,
            "schedule": self.schedule,
            "choices": self.choices,
            "scenario": self.scenario,
        }


@dataclass
class Phase:
    name: str
    cases: int = 0
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    note: str = ""
    ran: bool = True

    def to_json(self) -> dict[str, Json]:
        return {
            "name": self.name,
            "ran": self.ran,
            "cases": self.cases,
            "requests": self.requests,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "note": self.note,
        }


@dataclass
class Report:
    adapter: str
    hello: dict[str, Json] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    checks: collections.Counter[str] = field(default_factory=collections.Counter)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    minimal: dict[str, Failure] = field(default_factory=dict)  # per clause: the shortest
    by_phase: dict[str, dict[str, Failure]] = field(default_factory=dict)  # phase -> clause
    failed_in: dict[str, collections.Counter[str]] = field(default_factory=dict)
    protocol: list[str] = field(default_factory=list)
    searches: list[dict[str, Json]] = field(default_factory=list)  # per scenario, as check
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # clause -> why no check of it ran
    never: dict[str, str] = field(default_factory=dict)  # of those, the ones no run could check
    _cannot: dict[str, str] = field(default_factory=dict, repr=False)  # capability reasons

    @property
    def ok(self) -> bool:
        return not self.failed and not self.protocol

    def check(self, clauses: Sequence[str], times: int = 1) -> None:
        for clause in dict.fromkeys(clauses):
            self.checks[clause] += times

    def fail(self, failure: Failure) -> None:
        """Count a failure; keep, per clause, the best counterexample to show.

        Best: one that replays exactly (sequential, or controlled through the
        hooks) before a free-running one; then the fewest lines.
        """
        self.failed[failure.clause] += 1
        self.failed_in.setdefault(failure.phase, collections.Counter())[failure.clause] += 1
        failure.lines = renumber(failure.lines)
        failure.rule = failure.rule or rule_quote(failure.clause)
        best = self.minimal.get(failure.clause)
        if best is None or _rank(failure) < _rank(best):
            self.minimal[failure.clause] = failure
        in_phase = self.by_phase.setdefault(failure.phase, {})
        best = in_phase.get(failure.clause)
        if best is None or _rank(failure) < _rank(best):
            in_phase[failure.clause] = failure

    def cannot_check(self, clauses: Iterable[str], reason: str) -> None:
        """Checks of ``clauses`` left out because the adapter lacks a capability (``reason``)."""
        for clause in clauses:
            self._cannot.setdefault(clause, reason)

    def finish(self) -> None:
        """Say, for every clause no check of which ran, why (``skipped``).

        A clause the adapter's capabilities kept out, or one that no
        ``conform`` run checks (``spec/traceability.json``), is *never*
        checked against this adapter (``never``).  Any other unchecked clause
        was not reached by this run: its phases were turned off, or a
        protocol error stopped the run.
        """
        self.skipped.clear()
        self.never.clear()
        exempt = not_by_conform()
        for clause in clause_ids():
            if clause == PROTOCOL or self.checks[clause] or self.failed[clause]:
                continue
            if clause in self._cannot:
                self.never[clause] = self._cannot[clause]
            elif clause in exempt:
                self.never[clause] = f"meerkat-ref conform never checks it: {exempt[clause]}"
            elif self.protocol:
                self.skipped[clause] = "not reached: the run stopped at a protocol error"
            else:
                self.skipped[clause] = "not reached: the phases that check it did not run"
        self.skipped.update(self.never)

    def protocol_error(self, phase: str, message: str) -> None:
        self.protocol.append(f"{phase}: {message}")
        self.failed["PROTOCOL"] += 1

    def to_json(self) -> dict[str, Json]:
        return {
            "adapter": self.adapter,
            "hello": self.hello,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "phases": [p.to_json() for p in self.phases],
            "clauses": {
                c: {"checks": self.checks[c], "failed": self.failed[c]}
                for c in _order(self.checks.keys() | self.failed.keys())
            },
            "skipped": {c: self.skipped[c] for c in _order(self.skipped.keys())},
            "failures": [self.minimal[c].to_json() for c in _order(self.minimal.keys())],
            "by_phase": {
                phase: {
                    c: {"failed": self.failed_in[phase][c], "best": best[c].to_json()}
                    for c in _order(best.keys())
                }
                for phase, best in self.by_phase.items()
            },
            "searches": self.searches,
            "protocol_errors": self.protocol,
        }

    def text(self) -> str:
        out = [f"meerkat-ref conform: {self.adapter}"]
        if self.hello:
            caps = self.hello.get("capabilities")
            shown = ", ".join(caps) if isinstance(caps, list) and caps else "none"
            out.append(
                f"adapter: {self.hello.get('implementation')} {self.hello.get('version')}, "
                f"protocol {self.hello.get('protocol')}, variant {self.hello.get('variant')}, "
                f"capabilities: {shown}"
            )
        out.append("")
        rows: list[tuple[str, ...]] = [("phase", "cases", "requests", "failed", "seconds")]
        rows += [
            (
                p.name,
                str(p.cases) if p.ran else "-",
                str(p.requests) if p.ran else "-",
                str(p.failures) if p.ran else "-",
                f"{p.seconds:.2f}" if p.ran else "not run",
            )
            for p in self.phases
        ]
        out += _table(rows)
        if self.searches:
            out += ["", "concurrent search, per scenario:"]
            rows = [("scenario", "strategy", "schedules", "states", "violations", "exhausted")]
            rows += [
                (str(r["scenario"]), str(r["strategy"]), str(r["schedules"]), str(r["states"]),
                 str(r["violations"]), "yes" if r["exhausted"] else "no")
                for r in self.searches
            ]
            out += _table(rows)
        notes = [f"  {p.name}: {p.note}" for p in self.phases if p.note]
        if notes:
            out += ["", "notes:", *notes]
        out.append("")
        if self.failed_in:
            out += ["", "failures by phase:"]
            for phase, counts in self.failed_in.items():
                shown = ", ".join(f"{c} {counts[c]}" for c in _order(counts.keys()))
                out.append(f"  {phase}: {shown}")
            out.append("")
        clauses = _order(self.checks.keys() | self.failed.keys())
        rows = [("clause", "checks", "failed", "")]
        rows += [
            (c, str(self.checks[c]), str(self.failed[c]), "FAIL" if self.failed[c] else "ok")
            for c in clauses
        ]
        out += _table(rows)
        if self.skipped:
            out += ["", f"not checked ({len(self.skipped)} clause"
                    f"{'s' if len(self.skipped) != 1 else ''}, skipped):"]
            rows = [(c, self.skipped[c]) for c in _order(self.skipped.keys())]
            width = max(len(c) for c, _ in rows)
            out += [f"  {c:<{width}}  {reason}" for c, reason in rows]
        for message in self.protocol:
            out += ["", f"PROTOCOL ERROR {message}"]
        for clause in _order(self.minimal.keys()):
            f = self.minimal[clause]
            n = self.failed[clause]
            out += [
                "",
                f"FAIL {clause} ({n} failure{'s' if n != 1 else ''}; the shortest):",
                *([f"  rule: {f.rule}"] if f.rule else []),
                f"  phase: {f.phase}; case: {f.case}",
                *("  " + line for line in f.message.splitlines()),
            ]
            if f.schedule:
                out.append(f"  schedule ({len(f.schedule)} steps): {', '.join(f.schedule)}")
            out.append(f"  replay ({f.how}):")
            out += ["    " + line for line in f.lines]
        verdict = "PASS" if self.ok else "FAIL"
        failing = ", ".join(_order(self.failed.keys()))
        skipped = f"; {len(self.skipped)} clauses not checked" if self.skipped else ""
        out += ["", f"{verdict}" + (f": {failing}" if failing else "")
                + f" ({self.seconds:.1f}s{skipped})"]
        return "\n".join(out)


def _rank(failure: Failure) -> tuple[bool, int]:
    return (failure.how.startswith("free-running"), len(failure.lines))


def renumber(lines: Sequence[str]) -> list[str]:
    """The same request lines with ids renumbered 1, 2, ... in order of appearance."""
    ids: dict[str, str] = {}

    def fresh(value: object) -> object:
        if not isinstance(value, str):
            return value
        return ids.setdefault(value, str(len(ids) + 1))

    out = []
    for line in lines:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)
            continue
        if isinstance(msg, dict):
            if "id" in msg:
                msg = {"id": fresh(msg["id"]), **{k: v for k, v in msg.items() if k != "id"}}
            if isinstance(msg.get("commands"), list):
                for sub in msg["commands"]:
                    if isinstance(sub, dict) and "id" in sub:
                        sub["id"] = fresh(sub["id"])
        out.append(dumps(msg))
    return out


def _order(clauses: Iterable[str]) -> list[str]:
    rank = {c: i for i, c in enumerate(clause_ids())}
    return sorted(clauses, key=lambda c: (rank.get(c, len(rank)), c))


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """First column left-aligned, the others right; lined up whatever a port put in a cell."""
    return aligned_table(rows, numeric_columns=range(1, len(rows[0]))).splitlines()
