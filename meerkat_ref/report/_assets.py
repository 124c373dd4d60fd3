"""The report page's stylesheet and script, inlined into every file.

Why inline and hand-written: a report is one file that must open from a CI
artifact or a mail attachment with no network, so nothing is fetched (no
fonts, no frameworks).  The script holds no trace data: everything is
already in the page (rendered and escaped by ``_html``); the script only
moves the selection, so it cannot be a way in for hostile trace text.
"""

from __future__ import annotations

from ._markup import Markup

CSS = Markup(
    """
:root {
  --fg: #1f2328; --muted: #59636e; --bg: #ffffff; --panel: #f6f8fa; --line: #d1d9e0;
  --current: #dbeafe; --current-line: #2563eb; --bad: #fde2e1; --bad-strong: #b42318;
  --fault: #fff1d6; --fault-strong: #9a5b00; --back: #b42318; --ok: #1a7f37;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23; --line: #3d444d;
    --current: #1b3358; --current-line: #4493f8; --bad: #4a1d1d; --bad-strong: #ff7b72;
    --fault: #3d2e00; --fault-strong: #e3b341; --back: #ff7b72; --ok: #3fb950;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; padding: 1rem 1.25rem; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif;
}
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1rem; margin: 1rem 0 .4rem; }
h3 { font-size: .85rem; margin: .8rem 0 .3rem; text-transform: uppercase;
     letter-spacing: .04em; color: var(--muted); }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
header p { margin: .2rem 0; }
.about { color: var(--muted); }
.meta span { margin-right: 1.2rem; }
.meta b { font-weight: 600; }
.verdict { font-weight: 700; padding: .3rem .6rem; border-radius: 6px; display: inline-block; }
.verdict.fail { background: var(--bad); color: var(--bad-strong); }
.verdict.pass { color: var(--ok); }
.problems { border: 2px solid var(--bad-strong); background: var(--bad); padding: .4rem .8rem;
            border-radius: 6px; margin: .5rem 0; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 20rem; gap: 1rem;
       align-items: start; margin-top: .8rem; }
.lane-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; }
#lane { width: 100%; font-family: var(--mono); font-size: 11.5px; }
#lane th, #lane td { border-bottom: 1px solid var(--line); padding: .15rem .35rem;
                     text-align: left; vertical-align: top; overflow-wrap: break-word; }
#lane th[scope=row], #lane .badge, #lane .point { white-space: nowrap; }
#lane thead th { position: sticky; top: 0; background: var(--panel); z-index: 1; }
#lane td + td, #lane th + td { border-left: 1px solid var(--line); }
#lane tbody tr { cursor: pointer; }
#lane tbody tr:hover { background: var(--panel); }
#lane tr.violation { background: var(--bad); }
#lane tr.current { background: var(--current); outline: 2px solid var(--current-line);
                   outline-offset: -2px; }
#lane tr.violation.current { background: var(--bad); }
#lane tr.synthetic td, #lane tr.synthetic th { color: var(--muted); font-style: italic; }
.call-in, .call-out { font-size: 11px; }
#lane td .badge.rule { display: block; width: max-content; margin: 1px 0; }
.call-in { color: var(--muted); }
.note { font-size: 11px; font-style: italic; color: var(--back); }
.call-out { color: var(--ok); }
.badge { display: inline-block; padding: 0 .35rem; border-radius: 4px; font-size: 11px;
         font-weight: 700; font-family: system-ui, sans-serif; }
.badge.rule { background: var(--bad-strong); color: var(--bg); }
.badge.fault { background: var(--fault); color: var(--fault-strong); }
.badge.crash { background: var(--fg); color: var(--bg); }
td.crash-cell { text-align: center; font-weight: 700; letter-spacing: .2em; }
.change { display: block; }
.back { color: var(--back); font-weight: 700; }
aside { position: sticky; top: .5rem; max-height: calc(100vh - 1rem); overflow-y: auto;
        background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
        padding: .6rem .8rem; }
nav.steps { display: flex; gap: .3rem; flex-wrap: wrap; align-items: center; }
nav.steps button { font: inherit; padding: .1rem .5rem; border: 1px solid var(--line);
                   border-radius: 4px; background: var(--bg); color: var(--fg); cursor: pointer; }
html:not(.js) nav.steps { display: none; }
#current-step { display: block; font-weight: 700; margin: .4rem 0 0; font-size: 1.05rem; }
section.state h2 { margin-top: .3rem; }
section.state table { width: 100%; font-size: 12.5px; }
section.state th, section.state td { text-align: left; padding: .1rem .4rem;
                                     border-bottom: 1px solid var(--line); }
section.state ul, section.state ol, #violations ol { margin: .2rem 0; padding-left: 1.2rem; }
section.state li.now { font-weight: 700; }
.none { color: var(--muted); font-style: italic; margin: .2rem 0; }
tr.back td { color: var(--back); font-weight: 700; }
.vio { color: var(--bad-strong); }
#violations li.missing { color: var(--bad-strong); }
footer { margin-top: 1rem; color: var(--muted); font-size: 12.5px; }
kbd { font-family: var(--mono); border: 1px solid var(--line); border-bottom-width: 2px;
      border-radius: 3px; padding: 0 .25rem; font-size: 11.5px; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } aside { position: static; } }
@media (min-width: 901px) {
  /* The header stays put; the swimlane and the panel scroll, each in its own pane. */
  body { height: 100vh; display: flex; flex-direction: column; overflow: hidden;
         padding-bottom: .5rem; }
  header, footer { flex: none; }
  main { flex: 1 1 auto; min-height: 0; grid-template-rows: minmax(0, 1fr);
         align-items: stretch; }
  .lane-pane { min-height: 0; overflow: auto; }
  .lane-wrap { overflow: visible; }  /* the pane scrolls: the column headings stick to it */
  aside { position: static; max-height: none; min-height: 0; }
  footer { margin-top: .5rem; }
  footer p { margin: 0; }
}
"""
)

NOSCRIPT_CSS = Markup("section.state[hidden] { display: block; }")

SCRIPT = Markup(
    """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#lane tbody tr[data-step]"));
  if (!rows.length) { return; }
  document.documentElement.classList.add("js");
  var states = {};
  Array.prototype.forEach.call(document.querySelectorAll("section.state[data-step]"),
    function (s) { states[s.getAttribute("data-step")] = s; });
  var status = document.getElementById("current-step");
  var pos = -1;
  function select(i, scroll, quiet) {
    if (i < 0 || i >= rows.length) { return; }
    if (pos >= 0) {
      rows[pos].classList.remove("current");
      rows[pos].removeAttribute("aria-current");
      states[rows[pos].getAttribute("data-step")].hidden = true;
    }
    pos = i;
    var row = rows[i];
    var step = row.getAttribute("data-step");
    row.classList.add("current");
    row.setAttribute("aria-current", "step");
    states[step].hidden = false;
    status.setAttribute("data-step", step);
    status.textContent = "Step " + step + " (" + (i + 1) + " of " + rows.length + ")";
    if (scroll) { reveal(row); }
    if (quiet) { return; }  /* opening the page: its address stays as it was */
    try { history.replaceState(null, "", "#step-" + step); } catch (e) { /* file: URL quirks */ }
  }
  var pane = document.querySelector(".lane-pane");
  var head = document.querySelector("#lane thead");
  function paned() {  /* wide window: the swimlane scrolls in its own pane, the page not */
    return !!pane && getComputedStyle(pane).overflowY !== "visible";
  }
  function reveal(row) {
    if (!paned()) { row.scrollIntoView({block: "nearest"}); return; }
    /* Scroll the pane only, keeping the row clear of the sticky column headings. */
    var box = row.getBoundingClientRect(), view = pane.getBoundingClientRect();
    var top = view.top + (head ? head.getBoundingClientRect().height : 0);
    if (box.top < top) {
      pane.scrollTop -= top - box.top;
    } else if (box.bottom > view.bottom) {
      pane.scrollTop += box.bottom - view.bottom;
    }
    window.scrollTo(0, 0);
  }
  function fromHash() {
    var m = /^#step-(-?[0-9]+)$/.exec(location.hash);
    if (!m) { return -1; }
    for (var j = 0; j < rows.length; j++) {
      if (rows[j].getAttribute("data-step") === m[1]) { return j; }
    }
    return -1;
  }
  function nextViolation() {
    for (var j = 1; j <= rows.length; j++) {
      var k = (pos + j) % rows.length;
      if (rows[k].classList.contains("violation")) { select(k, true); return; }
    }
  }
  var moves = {
    first: function () { select(0, true); },
    prev: function () { select(pos - 1, true); },
    next: function () { select(pos + 1, true); },
    last: function () { select(rows.length - 1, true); },
    violation: nextViolation
  };
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var move = {ArrowRight: "next", j: "next", ArrowLeft: "prev", k: "prev",
                Home: "first", End: "last", v: "violation"}[e.key];
    if (!move) { return; }
    e.preventDefault();
    moves[move]();
  });
  document.querySelector("#lane tbody").addEventListener("click", function (e) {
    var row = e.target.closest("tr[data-step]");
    if (row) { select(rows.indexOf(row), false); }
  });
  Array.prototype.forEach.call(document.querySelectorAll("nav.steps button[data-go]"),
    function (b) {
      b.addEventListener("click", function () { moves[b.getAttribute("data-go")](); });
    });
  window.addEventListener("hashchange", function () {
    var j = fromHash();
    if (j >= 0) { select(j, true); }
  });
  var start = fromHash();
  select(start >= 0 ? start : 0, start >= 0, true);
  window.scrollTo(0, 0);  /* the title, the verdict and how to reproduce come first */
})();
"""
)
