"""The table: per module, mutants generated, killed, equivalent, survived; and the survivors.

``benchmarks/mutation-equivalents.toml`` is the one checked-in list of
verdicts a person gave, reviewed like code, keyed by mutant id:

``[equivalent]``  id = "why no caller can tell it from the original" (one line);
``[survivor]``    id = "the promise it breaks (its clause of spec/CONTRACT.md)":
                  known real survivors, each waiting for a rule, a finer model or
                  a wider scenario alphabet; ``tests/test_mutation.py`` holds the
                  service's CI slice to exactly this list (a ratchet).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._generate import Mutant
from ._paths import ROOT
from ._run import JUDGES, Verdict, store_for

VERDICTS_FILE = ROOT / "benchmarks" / "mutation-equivalents.toml"


@dataclass(frozen=True)
class Reviewed:
    """The reviewed verdicts: equivalents and known survivors, each with its line."""

    equivalent: Mapping[str, str] = field(default_factory=dict)
    survivor: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def load(path: Path = VERDICTS_FILE) -> Reviewed:
        if not path.exists():
            return Reviewed()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"equivalent", "survivor"}
        if unknown:
            raise ValueError(f"{path.name}: unknown table(s) {', '.join(sorted(unknown))}")
        eq = {str(k): str(v) for k, v in data.get("equivalent", {}).items()}
        sv = {str(k): str(v) for k, v in data.get("survivor", {}).items()}
        both = set(eq) & set(sv)
        if both:
            raise ValueError(f"{path.name}: both equivalent and survivor: {sorted(both)}")
        return Reviewed(eq, sv)


@dataclass
class Row:
    module: str
    judges: str
    generated: int = 0
    killed: int = 0  # by a rule
    errors: int = 0  # killed: error or timeout
    equivalent: int = 0
    survived: int = 0
    unjudged: int = 0

    @property
    def score(self) -> str:
        judged = self.killed + self.errors + self.survived
        if judged == 0:
            return "-"
        return f"{100 * (self.killed + self.errors) / judged:.1f}%"

    def cells(self) -> list[str]:
        return [self.module, self.judges, str(self.generated), str(self.killed),
                str(self.errors), str(self.equivalent), str(self.survived),
                str(self.unjudged), self.score]

    def add(self, other: Row) -> None:
        self.generated += other.generated
        self.killed += other.killed
        self.errors += other.errors
        self.equivalent += other.equivalent
        self.survived += other.survived
        self.unjudged += other.unjudged


HEADER = ["module", "judges (store)", "generated", "killed", "killed: error/timeout",
          "equivalent", "survived", "not judged", "killed of non-equivalent"]


@dataclass
class Table:
    rows: list[Row]
    totals: list[Row]
    survivors: list[tuple[Mutant, Verdict]]
    misjudged: list[tuple[Mutant, Verdict]]  # listed equivalent, yet killed
    stale: list[str] = field(default_factory=list)  # reviewed ids of these modules, not made

    def to_json(self) -> dict[str, object]:
        def row(r: Row) -> dict[str, object]:
            return {"module": r.module, "judges": r.judges, "generated": r.generated,
                    "killed": r.killed, "killed_error_or_timeout": r.errors,
                    "equivalent": r.equivalent, "survived": r.survived,
                    "not_judged": r.unjudged, "score": r.score}

        return {
            "format": "meerkat-ref/mutation@1",
            "modules": [row(r) for r in self.rows],
            "packages": [row(r) for r in self.totals],
            "survivors": [{"id": m.id, "where": f"{m.path}:{m.line}", "before": m.before,
                           "after": m.after} for m, _ in self.survivors],
            "listed_equivalent_but_killed": [m.id for m, _ in self.misjudged],
            "reviewed_but_not_a_mutant": self.stale,
        }


def build(mutants: Sequence[Mutant], verdicts: Mapping[str, Verdict],
          reviewed: Reviewed) -> Table:
    rows: dict[str, Row] = {}
    totals: dict[str, Row] = {}
    survivors: list[tuple[Mutant, Verdict]] = []
    misjudged: list[tuple[Mutant, Verdict]] = []
    for m in mutants:
        judges = f"{', '.join(JUDGES[m.package])} ({store_for(m)})"
        row = rows.setdefault(m.path, Row(m.path, judges))
        row.generated += 1
        v = verdicts.get(m.id)
        if v is None:
            row.unjudged += 1
        elif v.killed:
            if v.status == "killed":
                row.killed += 1
            else:
                row.errors += 1
            if m.id in reviewed.equivalent:
                misjudged.append((m, v))
        elif m.id in reviewed.equivalent:
            row.equivalent += 1
        else:
            row.survived += 1
            survivors.append((m, v))
    for row in rows.values():
        package = row.module.rsplit("/", 1)[0] + "/"
        totals.setdefault(package, Row(f"**{package}**", "")).add(row)
    made = {m.id for m in mutants}
    prefixes = tuple({m.path.removeprefix("meerkat_ref/") + ":" for m in mutants})
    stale = sorted(i for i in (*reviewed.equivalent, *reviewed.survivor)
                   if i.startswith(prefixes) and i not in made)
    return Table(list(rows.values()), list(totals.values()), survivors, misjudged, stale)


def _md(rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
    return out


def markdown(table: Table, reviewed: Reviewed) -> str:
    lines = _md([HEADER, *(r.cells() for r in table.rows), *(r.cells() for r in table.totals)])
    lines.append("")
    if table.misjudged:
        lines.append("**Listed as equivalent, yet killed** (the list is wrong; remove them):")
        lines += [f"- `{m.id}` by {v.judge}" for m, v in table.misjudged]
        lines.append("")
    if table.stale:
        lines.append("**Reviewed, but no mutant of the current code** (stale; remove them):")
        lines += [f"- `{i}`" for i in table.stale]
        lines.append("")
    if table.survivors:
        lines.append(f"Survivors ({len(table.survivors)}):")
        lines.append("")
        rows = [["id", "where", "mutation", "what it breaks"]]
        for m, _ in table.survivors:
            note = reviewed.survivor.get(m.id, "(not yet reviewed)")
            rows.append([f"`{m.id}`", f"{m.path}:{m.line}",
                         f"`{m.before}` → `{m.after}`", note])
        lines += _md(rows)
    else:
        lines.append("No survivors.")
    return "\n".join(lines) + "\n"
