"""Reports a person or a CI system can read: counterexamples as HTML, as a text swimlane and
as a Mermaid diagram, JUnit XML, progress, tables.

Everything here consumes plain data and never drives a run: a trace (the
``meerkat-ref/trace@1`` JSON defined in ``_trace``), test cases, counters.
Every drawing of a run reads its trace (``_diagrams``: text and Mermaid;
``_html``; ``_junit``).  Nothing here imports the oracle: the engine writes
its runs as traces (``oracle.engine.trace_of``) and hands them here, so
``check``, ``replay`` and ``conform`` all feed the same pictures.
``output_problem`` is what those commands ask before a run about the paths
they will write to; ``Ledger`` the JSON-lines file a long run appends its
results to, and resumes from.
"""

from ._diagrams import mermaid, swimlane
from ._html import render_gallery, render_html, report_name, write_gallery, write_report
from ._junit import Case, Failure, junit_xml, trace_failure
from ._ledger import Ledger, LedgerError
from ._outputs import OutputError, make_dir, output_problem, write_text
from ._progress import duration, make_progress, time_left
from ._table import aligned_table
from ._trace import FORMAT, Trace, TraceError, parse_trace, problems

__all__ = [
    "FORMAT",
    "Case",
    "Failure",
    "Ledger",
    "LedgerError",
    "OutputError",
    "Trace",
    "TraceError",
    "aligned_table",
    "duration",
    "junit_xml",
    "make_dir",
    "make_progress",
    "mermaid",
    "output_problem",
    "parse_trace",
    "problems",
    "render_gallery",
    "render_html",
    "report_name",
    "swimlane",
    "time_left",
    "trace_failure",
    "write_gallery",
    "write_report",
    "write_text",
]
