"""The HTML report as text: escaping, self-containment, problems shown, panels per step.

What a browser does with the page is in ``test_report_html.py``; here the
page is parsed with the standard library, so these run everywhere.
"""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import crashed_run

from meerkat_ref.oracle.engine import trace_of
from meerkat_ref.report import render_gallery, render_html, write_gallery, write_report
from meerkat_ref.report._html import verdict_text
from meerkat_ref.report._trace import parse_trace
from meerkat_ref.testing import Window

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "trace-example.json"
HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)> " onclick="alert(2)'
VOID = {"meta", "br", "img", "input", "link", "hr"}


def example() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


class Page(HTMLParser):
    """Every element's tag and attributes, and the text inside each ``data-step`` section."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts = 0
        self.sections: dict[str, str] = {}
        self.rows: dict[str, dict[str, str | None]] = {}
        self.texts: list[str] = []
        self._stack: list[tuple[str, str | None]] = []  # tag, section step if it opened one
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found))
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and found.get("data-step") is not None:
            self.rows[str(found["data-step"])] = found
        opened = None
        if tag == "section" and "state" in (found.get("class") or ""):
            opened = str(found.get("data-step"))
            self.sections[opened] = ""
        if tag not in VOID:
            self._stack.append((tag, opened))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, _ = self._stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for _, step in self._stack:
            if step is not None:
                self.sections[step] += data + " "

    def section(self, step: int) -> str:
        return " ".join(self.sections[str(step)].split())


def test_every_string_from_the_trace_is_escaped() -> None:
    trace = copy.deepcopy(example())
    trace["title"] = trace["about"] = trace["replay"] = trace["scenario"] = HOSTILE
    steps = trace["steps"]
    calls = trace["calls"]
    assert isinstance(steps, list) and isinstance(calls, list)
    steps[10]["violations"][0]["message"] = HOSTILE
    violations = trace["violations"]
    assert isinstance(violations, list)
    violations[0]["message"] = HOSTILE
    calls[0]["text"] = HOSTILE
    for step in steps:
        for ref in step["invoked"] + step["answered"]:
            if ref["call"] == 1:
                ref["text"] = HOSTILE
    steps[10]["store"] = {HOSTILE: {"message_count": 1}}
    text = render_html(trace)
    page = Page(text)
    assert page.scripts == 1, "only the report's own script"
    assert not [
        (tag, name) for tag, attrs in page.elements for name in attrs if name.startswith("on")
    ], "no event handler attribute came from the trace"
    assert not [a for _, a in page.elements if a.get("src")], "nothing is loaded from anywhere"
    assert "&lt;/script&gt;&lt;script&gt;alert(" in text
    assert HOSTILE in " ".join(page.texts), "the hostile text is shown, as text"


def test_the_page_is_self_contained() -> None:
    text = render_html(example())
    page = Page(text)
    hrefs = [a["href"] for tag, a in page.elements if tag == "a"]
    assert hrefs and all(str(h).startswith("#step-") for h in hrefs)
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert "@import" not in text and "@font-face" not in text
    assert "default-src 'none'" in text, "and the page forbids itself any fetch"
    assert render_html(example()) == text, "same trace, same bytes"


def test_each_step_has_its_state_panel_and_its_row() -> None:
    page = Page(render_html(example()))
    trace = parse_trace(example())
    assert sorted(page.sections, key=int) == [str(s.index) for s in trace.steps]
    assert sorted(page.rows, key=int) == [str(s.index) for s in trace.steps]
    assert "violation" in (page.rows["10"].get("class") or "")
    assert "violation" not in (page.rows["9"].get("class") or "")
    assert "s1 2 2 1" in page.section(0), "session, messages, revision, updated"
    assert "empty" in page.section(8)
    assert "s1 was archived at step 9: it is back" in page.section(10)
    assert "in the store again" not in page.section(7)


def test_gates_are_shown_when_the_trace_has_them_and_said_to_be_invisible_otherwise() -> None:
    page = Page(render_html(example()))
    assert "session armed archived saved revision s1 yes no 2" in page.section(5)
    assert "s1 yes yes 2" in page.section(6), "archive marks the gate archived"
    assert "no gates" in page.section(9), "archive dropped the gate"
    trace = copy.deepcopy(example())
    for step in trace["steps"]:  # type: ignore[attr-defined]
        step["gates"] = None
    page = Page(render_html(trace))
    assert "not visible for this target" in page.section(6)


def test_calls_in_flight_and_answers_so_far_follow_the_step() -> None:
    page = Page(render_html(example()))
    assert 'turn: start_turn s1 "more" (since step 0)' in page.section(5)
    assert "archive: archive s1 (since step 5)" in page.section(8)
    assert "none yet" in page.section(8)
    assert "step 9 · archive: archive s1 → ok" in page.section(10)
    assert 'step 10 · turn: start_turn s1 "more" → ok' in page.section(10)
    assert "(since step" not in page.section(10)


def test_violations_citing_missing_steps_are_shown_not_hidden() -> None:
    trace = copy.deepcopy(example())
    steps = trace["steps"]
    assert isinstance(steps, list)
    steps.pop()  # the run.end step, which a violation cites
    text = render_html(trace)
    assert 'data-testid="trace-problems"' in text
    assert "violation ARCHIVE-FINAL cites step 11, which is not in steps" in text
    assert "step 11 (not in the trace)" in text
    assert 'data-testid="trace-problems"' not in render_html(example())


def test_a_fault_and_a_crash_are_marked_on_their_rows() -> None:
    trace = copy.deepcopy(example())
    steps = trace["steps"]
    assert isinstance(steps, list)
    steps[7]["fault"] = True
    page = Page(render_html(trace))
    assert "fault" in (page.rows["7"].get("class") or "")
    crashed = trace_of(crashed_run())
    page = Page(render_html(crashed))
    crash = next(s for s in parse_trace(crashed).steps if s.crash)
    assert "crash" in (page.rows[str(crash.index)].get("class") or "")
    assert "CRASH" in page.section(crash.index)


def test_verdict() -> None:
    trace = parse_trace(example())
    assert verdict_text(trace) == "FAIL: ARCHIVE-FINAL (2); first at step 10"
    clean = copy.deepcopy(example())
    clean["violations"] = []
    for step in clean["steps"]:  # type: ignore[attr-defined]
        step["violations"] = []
    assert verdict_text(parse_trace(clean)) == "PASS: no violation"


def test_files_are_named_from_the_title_and_stay_in_their_directory(tmp_path: Path) -> None:
    path = write_report(example(), tmp_path / "out")
    assert path.parent == tmp_path / "out"
    assert path.name == "example-window-1-with-its-gates-hand-written.html"
    sneaky = write_report(example(), tmp_path, name="../../etc/passwd")
    assert sneaky.parent == tmp_path and sneaky.name == "etc-passwd.html"
    index = write_gallery([("one", example()), ("two", example())], tmp_path / "g", "Two")
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.html", "one.html", "two.html"]
    hrefs = [a["href"] for tag, a in Page(index.read_text()).elements if tag == "a"]
    assert hrefs == ["one.html", "two.html"]


def test_the_gallery_escapes_too() -> None:
    trace = copy.deepcopy(example())
    trace["title"] = HOSTILE
    page = Page(render_gallery([("a.html", trace)], title=HOSTILE, intro=HOSTILE))
    assert page.scripts == 0
    assert not [n for _, a in page.elements for n in a if n.startswith("on")]


@pytest.mark.parametrize("window", list(Window))
def test_window_names_are_the_check_commands_stems(window: Window) -> None:
    from meerkat_ref.specgen.gallery import window_name

    assert window_name(window) == f"window-{window.number}-{window.value}"
