"""Reports a person or a CI system can read: HTML counterexamples, JUnit XML, progress, tables.

Everything here consumes plain data and never drives a run: a trace (the
``meerkat-ref/trace@1`` JSON defined in ``_trace``), test cases, counters.
``trace_of`` turns an engine run (``RunOutcome``) into a trace, so ``check``,
``replay`` and ``conform`` all feed the same pictures; ``Counterexample`` and
``write_html`` are what those commands call to write them, ``output_problem``
what they ask before a run about the paths they will write to; ``Ledger``
the JSON-lines file a long run appends its results to, and resumes from.
"""

from ._counterexamples import Counterexample, write_html
from ._from_run import trace_of
from ._html import render_gallery, render_html, report_name, write_gallery, write_report
from ._junit import Case, Failure, junit_xml, trace_failure
from ._ledger import Ledger, LedgerError
from ._outputs import OutputError, output_problem, write_text
from ._progress import duration, make_progress, time_left
from ._table import aligned_table
from ._trace import FORMAT, Trace, TraceError, parse_trace, problems

__all__ = [
    "FORMAT",
    "Case",
    "Counterexample",
    "Failure",
    "Ledger",
    "LedgerError",
    "OutputError",
    "Trace",
    "TraceError",
    "aligned_table",
    "duration",
    "junit_xml",
    "make_progress",
    "output_problem",
    "parse_trace",
    "problems",
    "render_gallery",
    "render_html",
    "report_name",
    "time_left",
    "trace_failure",
    "trace_of",
    "write_gallery",
    "write_html",
    "write_report",
    "write_text",
]
