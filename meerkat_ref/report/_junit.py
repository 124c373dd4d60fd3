"""JUnit XML, the result format CI systems read (Jenkins, GitLab, GitHub annotations, Buildkite).

Why: a CI log that says "1 violation" is read by nobody; a test report puts
the failing scenario (or conformance clause) in the CI's own test view, with
the command that reproduces it.  One test case per scenario or clause.

The dialect is the Jenkins xUnit plugin's ``junit-10.xsd`` (the Ant format),
the one most CI systems accept: a ``<testsuites>`` root holding one
``<testsuite name tests failures errors skipped time>``, holding
``<testcase name classname time>`` elements, a failing one holding
``<failure message type>`` whose text is the whole story, one that could not
be checked holding ``<skipped message>`` with the reason.  Times are seconds
with three decimals (the schema's ``SUREFIRE_TIME``).  No timestamp or host
name unless given, so the same results give the same bytes.  Characters
XML 1.0 cannot carry (most control characters, which a port's messages may
contain) are written as ``\\xNN``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._trace import parse_trace

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Failure:
    """Why a case failed: a one-line ``message`` and the full ``text`` (with the replay command)."""

    message: str
    text: str
    type: str = "violation"


@dataclass(frozen=True)
class Case:
    """One scenario or clause: ``failure`` is None when it passed; ``skipped``: why not run."""

    name: str
    classname: str
    seconds: float
    failure: Failure | None = None
    skipped: str | None = None


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a test case's time must be a finite number >= 0, got {value!r}")
    return f"{value:.3f}"


def junit_xml(
    suite_name: str,
    cases: Sequence[Case],
    *,
    timestamp: str | None = None,
    hostname: str | None = None,
) -> str:
    """One ``<testsuite>`` of ``cases`` inside ``<testsuites>``, as an XML document (text)."""
    failures = sum(1 for c in cases if c.failure is not None)
    skipped = sum(1 for c in cases if c.failure is None and c.skipped is not None)
    total = _seconds(sum(c.seconds for c in cases))
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": _clean(suite_name), **counts, "time": total})
    suite_attrs = {"name": _clean(suite_name), **counts, "skipped": str(skipped),
                   "time": total}
    if timestamp is not None:
        suite_attrs["timestamp"] = _clean(timestamp)
    if hostname is not None:
        suite_attrs["hostname"] = _clean(hostname)
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    for case in cases:
        node = ET.SubElement(
            suite,
            "testcase",
            {
                "name": _clean(case.name),
                "classname": _clean(case.classname),
                "time": _seconds(case.seconds),
            },
        )
        if case.failure is not None:
            failure = ET.SubElement(
                node,
                "failure",
                {"message": _clean(case.failure.message), "type": _clean(case.failure.type)},
            )
            failure.text = _clean(case.failure.text)
        elif case.skipped is not None:
            ET.SubElement(node, "skipped", {"message": _clean(case.skipped)})
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def trace_failure(trace: Mapping[str, object]) -> Failure:
    """The failure of a case whose counterexample is ``trace`` (a ``meerkat-ref/trace@1`` dict).

    Message: the first violation.  Text: every violation with its step, then
    the replay command, so the CI's failure view says how to reproduce it.
    """
    parsed = parse_trace(trace)
    lines = [f"{v.rule} at step {v.step}: {v.message}" for v in parsed.violations]
    first = lines[0] if lines else "no violation recorded"
    rules = sorted({v.rule for v in parsed.violations})
    text = "\n".join(
        [
            f"{parsed.title}: {len(parsed.steps)} steps",
            *lines,
            "",
            f"replay: {parsed.replay}" if parsed.replay else "replay: (no replay command)",
        ]
    )
    return Failure(first, text, ",".join(rules) or "violation")
