"""The spec's clause ids and rules, parsed from ``spec/`` (never copied).

Every clause of ``spec/CONTRACT.md`` is a heading ``### <section>.<n> [ID]
Title`` followed by a ``**Model:** yes|no`` line.  The adapter protocol's own
rules are defined in ``spec/ADAPTER.md`` where they are stated, by a bold
marker at the start of a paragraph or list item: ``**[WIRE-FIELDS] Fields.**``.
The oracle reports by these ids, the traceability test checks them, and
nothing else lists them: add a clause and it exists everywhere.

A *rule* is a normative sentence: one with the word "must".  Every such
sentence in CONTRACT.md and ADAPTER.md names, in brackets, the clause it
belongs to (``specgen.docs`` checks it), so ``rule_quote(id)`` can quote a
clause's rules, from the very text a port author reads, in a failure report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

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
"""Not a clause: the report's name for a broken protocol (a line the oracle cannot use)."""

# -- the adapter protocol's rules ----------------------------------------------------------

WIRE_ID = r"WIRE(?:-[A-Z]+)+"
_RULE_MARK = re.compile(rf"^(?:[-*] )?\*\*\[(?P<id>{WIRE_ID})\] (?P<title>[^*]+?)\.?\*\*")


@dataclass(frozen=True)
class WireRule:
    """A rule of the adapter protocol, defined in ``spec/ADAPTER.md``."""

    id: str
    title: str
    text: str  # its paragraph (or list item), as written


def _paragraph(lines: list[str], start: int) -> str:
    """The paragraph or list item that begins at ``lines[start]``, joined into one line."""
    out = [lines[start].strip()]
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith(("- ", "* ", "#", "|")) or line[:1].isdigit():
            break
        out.append(line.strip())
    return " ".join(out)


def parse_wire_rules(text: str) -> tuple[list[WireRule], list[str]]:
    """The ``**[WIRE-...] Title.**`` rules of ADAPTER.md, in order, and what is wrong with them."""
    lines = text.splitlines()
    rules: list[WireRule] = []
    for index, line in enumerate(lines):
        match = _RULE_MARK.match(line.strip())
        if match is not None:
            rules.append(WireRule(match.group("id"), match.group("title").strip(),
                                  _paragraph(lines, index)))
    ids = [r.id for r in rules]
    problems = [f"rule {rid} is defined twice" for rid in sorted(set(ids)) if ids.count(rid) > 1]
    return rules, problems


# -- normative sentences ------------------------------------------------------------------

_MUST = re.compile(r"(?<![*\w])must(?![*\w])", re.IGNORECASE)  # "*must*": the word, mentioned
_NAMED = re.compile(rf"\[({CLAUSE_ID})\]")
_BARE = re.compile(rf"(?<!\()\[({CLAUSE_ID})\]")
_LEAD = re.compile(r"^(?:[-*] |\d+\. )?(?:\*\*\[[A-Z-]+\][^*]*\*\* ?)?")
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?]\*\*))\s+(?=[A-Z`*(\[\"])")
_MARKERS = re.compile(r"<!-- BEGIN (?P<name>[a-z0-9-]+) -->.*?<!-- END (?P=name) -->", re.DOTALL)
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_NUMBERED = re.compile(r"^\d+\. ")


@dataclass(frozen=True)
class Sentence:
    text: str
    line: int  # where it starts, 1-based
    clause: str | None  # the CONTRACT.md clause it is written in, if any

    @property
    def normative(self) -> bool:
        return _MUST.search(self.text) is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The ids it names in brackets."""
        return tuple(_NAMED.findall(self.text))

    @property
    def owner(self) -> str | None:
        """The clause the sentence states a rule of.

        The clause it is written in, if it names it; else the first id it
        names bare (``[X]``, not the cross-reference ``([X])``).
        """
        if self.clause is not None and self.clause in self.names:
            return self.clause
        bare = _BARE.findall(self.text)
        return bare[0] if bare else None

    @property
    def plain(self) -> str:
        """The text without a list bullet or a leading rule marker."""
        return _LEAD.sub("", self.text)


def _blank(match: re.Match[str]) -> str:
    """The same number of lines, emptied (so line numbers still count)."""
    return "\n" * match.group(0).count("\n")


def sentences(text: str) -> list[Sentence]:
    """The prose of a spec page, sentence by sentence (code and generated sections left out).

    A paragraph, a list item, a table row and a heading are each split into
    sentences at ". " before a capital, a backtick or a bracket.
    """
    text = _FENCE.sub(_blank, _MARKERS.sub(_blank, text))
    out: list[Sentence] = []
    clause: str | None = None
    block: list[str] = []
    start = 0

    def flush() -> None:
        if block:
            joined = " ".join(part.strip() for part in block)
            out.extend(Sentence(s.strip(), start, clause)
                       for s in _SENTENCE_END.split(joined) if s.strip())
        block.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        heading = _HEADING.match(line)
        if line.startswith("#"):
            flush()
            if heading is not None:
                clause = heading.group("id")
            elif line.startswith(("# ", "## ")):
                clause = None
        item = stripped.startswith(("- ", "* ")) or _NUMBERED.match(stripped) is not None
        if not stripped or line.startswith(("#", "|")) or item:
            flush()
        if stripped:
            if not block:
                start = number
            block.append(stripped)
            if line.startswith(("#", "|")):
                flush()
    flush()
    return out


# -- the installed spec ------------------------------------------------------------------

T = TypeVar("T")


def _installed(name: str, parse: Callable[[str], tuple[list[T], list[str]]]) -> tuple[T, ...]:
    """What ``parse`` finds in the installed ``spec/<name>``; ``ValueError`` if it is malformed."""
    found, problems = parse(spec_text(name))
    if problems:
        raise ValueError(f"spec/{name}: " + "; ".join(problems))
    return tuple(found)


@cache
def contract_clauses() -> tuple[Clause, ...]:
    """The clauses of the installed ``spec/CONTRACT.md``, in order."""
    return _installed("CONTRACT.md", parse_clauses)


@cache
def wire_rules() -> tuple[WireRule, ...]:
    """The rules of the installed ``spec/ADAPTER.md``, in order."""
    return _installed("ADAPTER.md", parse_wire_rules)


def clause_ids() -> tuple[str, ...]:
    """Every id: the contract's clauses in order, the protocol's rules, then ``PROTOCOL``."""
    return (*(c.id for c in contract_clauses()), *(r.id for r in wire_rules()), PROTOCOL)


@cache
def not_by_conform() -> dict[str, str]:
    """Clauses no ``conform`` run checks, each with the reason (``spec/traceability.json``).

    The installed spec's, as the oracle runs with it; ``specgen.docs`` checks
    the checkout's copy (every clause is checked by conform or listed here).
    """
    data = json.loads(spec_text("traceability.json"))
    reasons = data.get("not_by_conform", {}) if isinstance(data, dict) else {}
    if not isinstance(reasons, dict):
        raise ValueError("spec/traceability.json: 'not_by_conform' must map ids to reasons")
    return {str(k): str(v) for k, v in reasons.items()}


QUOTE_LIMIT = 600
"""At most this many characters of a rule are quoted in a report."""


def _worded(text: str) -> bool:
    """Prose, not a code expression: five words or more outside backticks."""
    return len(re.sub(r"`[^`]*`", " ", text).split()) >= 5


@cache
def rule_quote(cid: str) -> str:
    """What a report quotes for clause ``cid``: its rules, as the spec states them.

    The sentences of CONTRACT.md and ADAPTER.md that say "must" and name
    ``[cid]``; failing those, the first sentence of the clause (or of the
    protocol rule's paragraph).  Where it is written is said first.  Empty
    for an id the spec does not define (``PROTOCOL``).
    """
    pages = {name: spec_text(name) for name in ("CONTRACT.md", "ADAPTER.md")}
    where = ""
    first = ""
    for clause in contract_clauses():
        if clause.id == cid:
            where = f"spec/CONTRACT.md {clause.number} [{cid}]"
            body = [s.plain for s in sentences(pages["CONTRACT.md"]) if s.clause == cid
                    and not s.text.startswith(("#", "**Model:**")) and _worded(s.text)]
            first = body[0] if body else ""
    for rule in wire_rules():
        if rule.id == cid:
            where = f"spec/ADAPTER.md [{cid}]"
            parts = [_LEAD.sub("", s) for s in _SENTENCE_END.split(rule.text)]
            first = next((s for s in parts if s), "")
    if not where:
        return ""
    rules = [s.plain for name in pages for s in sentences(pages[name])
             if s.normative and s.owner == cid]
    quoted = " ".join(dict.fromkeys(rules)) or first
    if len(quoted) > QUOTE_LIMIT:
        quoted = quoted[: QUOTE_LIMIT - 3].rstrip() + "..."
    return f"{where}: \"{quoted}\""


__all__ = [
    "CLAUSE_ID",
    "PROTOCOL",
    "WIRE_ID",
    "Clause",
    "Sentence",
    "WireRule",
    "clause_ids",
    "contract_clauses",
    "not_by_conform",
    "parse_clauses",
    "parse_wire_rules",
    "rule_quote",
    "sentences",
    "wire_rules",
]
