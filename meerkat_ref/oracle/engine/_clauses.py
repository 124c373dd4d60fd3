"""The contract's clause ids, parsed from ``spec/CONTRACT.md`` (never copied).

Every clause is a heading ``### <section>.<n> [ID] Title`` followed by a
``**Model:** yes|no`` line.  The oracle reports by these ids, the traceability
test checks them, and nothing else lists them: add a clause to the contract
and it exists everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..._spec import spec_text

CLAUSE_ID = r"[A-Z]{2,}(?:-[A-Z]+)*"
_HEADING = re.compile(rf"^### (?P<number>\d+\.\d+) \[(?P<id>{CLAUSE_ID})\] (?P<title>\S.*)$")
_SECTION = re.compile(r"^## (?P<number>\d+)\. ")
_MODEL_LINE = re.compile(r"^\*\*Model:\*\* (?P<flag>yes|no)\b")

# -- the contract's clauses ------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    id: str
    number: str  # "3.2": section 3, second clause
    title: str
    model: bool  # whether models/ encodes it (and so must carry an [ID] tag)


def parse_clauses(text: str) -> tuple[list[Clause], list[str]]:
    """The clauses of CONTRACT.md in order, and what is wrong with their form."""
    clauses: list[Clause] = []
    problems: list[str] = []
    section: int | None = None
    expected = 1
    pending: tuple[str, str, str] | None = None
    lines = text.splitlines()

    def close(index: int) -> None:
        nonlocal pending
        if pending is None:
            return
        cid, number, title = pending
        pending = None
        for line in lines[index:]:
            if line.startswith("#"):
                break
            found = _MODEL_LINE.match(line)
            if found:
                clauses.append(Clause(cid, number, title, found.group("flag") == "yes"))
                return
        problems.append(f"clause {cid} has no '**Model:** yes|no' line")

    for index, line in enumerate(lines):
        if line.startswith("#"):
            close(index)
        if (match := _SECTION.match(line)) is not None:
            section, expected = int(match.group("number")), 1
            continue
        match = _HEADING.match(line)
        if match is None:
            if line.startswith("### ") and "[" in line:
                problems.append(f"malformed clause heading: {line!r}")
            continue
        number = match.group("number")
        want = f"{section}.{expected}"
        if number != want:
            problems.append(f"clause {match.group('id')} is numbered {number}, expected {want}")
        expected += 1
        pending = (match.group("id"), number, match.group("title"))
        close(index + 1)
    ids = [c.id for c in clauses]
    problems += [f"clause {cid} is defined twice" for cid in sorted(set(ids)) if ids.count(cid) > 1]
    return clauses, problems


PROTOCOL = "PROTOCOL"
"""Not a clause of the contract: the report's name for a broken ``spec/ADAPTER.md``."""


@cache
def contract_clauses() -> tuple[Clause, ...]:
    """The clauses of the installed ``spec/CONTRACT.md``, in order."""
    clauses, problems = parse_clauses(spec_text("CONTRACT.md"))
    if problems:
        raise ValueError("spec/CONTRACT.md: " + "; ".join(problems))
    return tuple(clauses)


def clause_ids() -> tuple[str, ...]:
    """Every clause id, in the contract's order, then ``PROTOCOL``."""
    return (*(c.id for c in contract_clauses()), PROTOCOL)


__all__ = ["CLAUSE_ID", "PROTOCOL", "Clause", "clause_ids", "contract_clauses", "parse_clauses"]
