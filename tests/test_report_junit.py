"""JUnit XML that CI systems accept, checked against the rules of junit-10.xsd.

The schema is the Jenkins xUnit plugin's ``junit-10.xsd`` (Ant's format).
Fetching it is not an option (tests run without network) and a schema
library would be a dependency for one test, so ``junit10_problems`` states
its rules here: which elements may hold which, the required and the allowed
attributes of each (the schema admits no others), the ``SUREFIRE_TIME``
pattern, and that ``testsuites``/``testsuite``/``testcase`` hold no text.
Beyond the schema, the counts must be right.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from meerkat_ref.report._junit import Case, Failure, junit_xml, trace_failure

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "trace-example.json"

# junit-10.xsd, element by element: (children allowed, attributes required, attributes allowed)
_CASE_CHILDREN = {
    "skipped",
    "error",
    "failure",
    "rerunFailure",
    "rerunError",
    "flakyFailure",
    "flakyError",
    "system-out",
    "system-err",
}
SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    "testsuites": ({"testsuite"}, set(), {"name", "time", "tests", "failures", "errors"}),
    "testsuite": (
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
        {"name", "tests", "failures", "errors"},
        {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp"}
        | {"hostname", "id", "package", "file", "log", "url"},
    ),
    "testcase": (_CASE_CHILDREN, {"name"}, {"name", "time", "classname", "group"}),
    "failure": (set(), set(), {"type", "message"}),
    "error": (set(), set(), {"type", "message"}),
    "skipped": (set(), set(), {"type", "message"}),
    "properties": ({"property"}, set(), set()),
    "property": (set(), {"name", "value"}, {"name", "value"}),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
NO_TEXT = {"testsuites", "testsuite", "testcase", "properties", "property"}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def junit10_problems(document: str) -> list[str]:
    """Where ``document`` breaks junit-10.xsd (or its own counts); [] when it is valid."""
    try:
        root = ET.fromstring(document.encode("utf-8"))
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    found: list[str] = []
    if root.tag != "testsuites":
        found.append(f"root is <{root.tag}>, not <testsuites>")

    def visit(node: ET.Element) -> None:
        rule = SCHEMA.get(node.tag)
        if rule is None:
            found.append(f"<{node.tag}> is not in the schema")
            return
        children, required, allowed = rule
        for name in sorted(required - set(node.attrib)):
            found.append(f"<{node.tag}> lacks required attribute {name}")
        for name in sorted(set(node.attrib) - allowed):
            found.append(f"<{node.tag}> has attribute {name}, which the schema does not allow")
        time = node.attrib.get("time") if node.tag in ("testsuites", "testsuite") else None
        if time is not None and not SUREFIRE_TIME.fullmatch(time):
            found.append(f"<{node.tag}> time {time!r} is not a SUREFIRE_TIME")
        for child in node:
            if child.tag not in children:
                found.append(f"<{child.tag}> may not be inside <{node.tag}>")
            visit(child)
        if node.tag in NO_TEXT:
            stray = (node.text or "") + "".join(c.tail or "" for c in node)
            if stray.strip():
                found.append(f"<{node.tag}> holds text {stray.strip()[:20]!r}")

    visit(root)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(1 for c in cases if c.find("failure") is not None),
            "errors": sum(1 for c in cases if c.find("error") is not None),
        }
        for name, want in counts.items():
            if suite.get(name) != str(want):
                found.append(f"testsuite {suite.get('name')}: {name}={suite.get(name)}, is {want}")
    return found


def cases() -> list[Case]:
    return [
        Case("turn-save-vs-archive", "meerkat-ref.check.reference", 1.25),
        Case(
            "window-1-save-after-turn",
            "meerkat-ref.check.seed-0.4.0",
            0.5,
            Failure(
                "ARCHIVE-FINAL at step 15: s1 written to the store after its archive returned",
                "ARCHIVE-FINAL at step 15: ...\n\n"
                "replay: meerkat-ref replay counterexamples/window-1-save-after-turn.json",
                "ARCHIVE-FINAL",
            ),
        ),
        Case("ARCHIVE-FINAL", "meerkat-ref.conform", 0.0),
    ]


def test_a_report_is_valid_junit_10_with_the_right_counts() -> None:
    document = junit_xml("meerkat-ref check", cases())
    assert junit10_problems(document) == []
    root = ET.fromstring(document)
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    assert suite.get("time") == root.get("time") == "1.750"
    failing = suite.findall("testcase")[1]
    failure = failing.find("failure")
    assert failure is not None and failure.text is not None
    assert "meerkat-ref replay counterexamples/window-1-save-after-turn.json" in failure.text
    assert failure.get("type") == "ARCHIVE-FINAL"
    assert [c.get("name") for c in suite.findall("testcase")] == [c.name for c in cases()]


def test_the_checker_can_say_no() -> None:
    good = junit_xml("suite", cases())
    head = '<testsuite name="suite" tests="3"'
    assert "<testsuite> lacks required attribute tests" in junit10_problems(
        good.replace(head, '<testsuite name="suite"')
    )
    passing = '<testcase name="ARCHIVE-FINAL" classname="meerkat-ref.conform" time="0.000" />'
    assert passing in good
    failing = passing[:-3] + "><failure>x</failure></testcase>"
    assert "testsuite suite: failures=1, is 2" in junit10_problems(good.replace(passing, failing))
    assert any("not a SUREFIRE_TIME" in p for p in junit10_problems(good.replace("1.750", "1e3")))
    stamped = good.replace("<testsuites ", '<testsuites timestamp="now" ')
    assert "<testsuites> has attribute timestamp, which the schema does not allow" in (
        junit10_problems(stamped)
    )
    assert "<testcase> holds text 'stray'" in junit10_problems(
        good.replace(passing, passing[:-3] + ">stray</testcase>")
    )
    assert junit10_problems("<testsuites>")[0].startswith("not well-formed XML")


def test_hostile_text_stays_well_formed_and_readable() -> None:
    nasty = 'a <b> & "c" ]]> \x00\x07 \ud800 end'
    document = junit_xml(nasty, [Case(nasty, nasty, 1.0, Failure(nasty, nasty + "\nline 2"))])
    assert junit10_problems(document) == []
    failure = ET.fromstring(document).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'a <b> & "c" ]]> \\x00\\x07 \\xd800 end'
    assert failure.text == 'a <b> & "c" ]]> \\x00\\x07 \\xd800 end\nline 2'


def test_optional_timestamp_and_host_name_and_determinism() -> None:
    assert junit_xml("s", cases()) == junit_xml("s", cases())
    assert "timestamp" not in junit_xml("s", cases())
    stamped = junit_xml("s", cases(), timestamp="2026-01-02T03:04:05", hostname="ci")
    assert junit10_problems(stamped) == []
    suite = ET.fromstring(stamped).find("testsuite")
    assert suite is not None and suite.get("hostname") == "ci"
    assert junit10_problems(junit_xml("empty", [])) == []


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_an_impossible_time_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number"):
        junit_xml("s", [Case("c", "k", seconds)])


def test_a_trace_gives_its_failure_with_the_replay_command() -> None:
    failure = trace_failure(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert failure.message.startswith("ARCHIVE-FINAL at step 10: s1 written to the store")
    assert failure.type == "ARCHIVE-FINAL"
    assert failure.text.endswith(
        "replay: meerkat-ref replay counterexamples/window-1-save-after-turn.json"
    )
    document = junit_xml("conform", [Case("window-1", "meerkat-ref", 0.1, failure)])
    assert junit10_problems(document) == []
