"""Every rule spec/ states once after issue 14 is checked by conform, which names it and quotes it.

For each of the six points a port author found said twice, differently, or
not at all, ``tests/ports/misread.py`` serves the reference with the rule
read another way.  ``conform`` (its sequential phase: the vectors, with the
hooks cases) must fail that port under the clause that states the rule, and
its report must quote the rule from ``spec/``.  The reference passes the same
vectors (``tests/test_vectors.py``), and so does the JavaScript port written
from the spec (``tests/test_js_port.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from helpers import ADAPTER_TIMEOUT

from meerkat_ref.oracle.conform import Options, Report, conform, conform_target
from meerkat_ref.oracle.engine._cases import HOOKS_CASES
from meerkat_ref.oracle.engine._clauses import rule_quote
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.variants import Variant

MISREAD = Path(__file__).resolve().parent / "ports" / "misread.py"
SEQUENTIAL = "sequential vectors"
ONLY_SEQUENTIAL = Options(random_cases=0, search_runs=0, free_runs=0, max_schedules=0,
                          shrink_budget=0, timeout=ADAPTER_TIMEOUT)


CASES = [
    ("tombstone-first", "ARCHIVE", "archive-before-the-store-answers",
     "An archive must not put a tombstone in the map before the store has said"),
    ("any-uuid-text", "IDS", "session-id-text",
     "must refuse any other text with `INVALID_ARGUMENT`"),
    ("lenient-fields", "WIRE-FIELDS", "bad-request-or-invalid-argument",
     "A command whose shape is wrong must be answered `BAD_REQUEST`"),
    ("compact-prompt", "COMPACT", "compact-prompt-is-a-turn",
     "must be handled as a turn, `/compact` included"),
    ("keep-message", "HOST-MESSAGE", "host-message-interrupted-mid-serve",
     "the message must be dropped, never served again"),
    ("hang-read", "LIVENESS", "create-and-read",
     "every call except a host-mode one must return without help from another call"),
]
"""(reading of ``tests/ports/misread.py``, the clause, the case that catches it, the rule)."""


@pytest.mark.parametrize(("reading", "clause", "case", "rule"),
                         [pytest.param(*c, id=c[0]) for c in CASES])
def test_conform_fails_a_port_that_reads_the_rule_another_way(
    reading: str, clause: str, case: str, rule: str
) -> None:
    report = conform([sys.executable, str(MISREAD), reading], ONLY_SEQUENTIAL, concurrent=[])
    assert not report.ok
    assert not report.protocol, report.protocol
    assert report.failed_in[SEQUENTIAL][clause] > 0, report.text()
    first = report.by_phase[SEQUENTIAL][clause]
    assert first.case == case, report.text()
    assert rule in first.rule and first.rule == rule_quote(clause)
    text = report.text()
    assert f"FAIL {clause} " in text and rule in text
    assert report.to_json()["failures"][0]["rule"]  # machine-readable too


class _WithoutHooks:
    """The reference in process, announcing no scheduling hooks."""

    def __init__(self, inner: InProcessTarget) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    @property
    def capabilities(self) -> frozenset[str]:
        return self.inner.capabilities - {"points"}


def test_without_hooks_the_hooks_cases_are_skipped_and_said_so() -> None:
    report = Report(adapter="reference without hooks")

    async def main() -> None:
        async with Variant.parse("reference").target() as target:
            await conform_target(_WithoutHooks(target), ONLY_SEQUENTIAL, report, [])  # type: ignore[arg-type]

    trio.run(main)
    assert report.ok, report.text()
    sequential = report.phases[0]
    assert sequential.name == SEQUENTIAL
    assert f"{len(HOOKS_CASES)} hooks cases not run" in sequential.note
    assert "archive-before-the-store-answers" in sequential.note
