"""Reports a person or a CI system can read: HTML counterexamples, JUnit XML, progress, tables.

Everything here consumes plain data and never drives a run: a trace (the
``meerkat-ref/trace@1`` JSON defined in ``_trace``), test cases, counters.
So the engine, ``replay`` and ``conform`` can all feed it, and nothing here
imports the explorer.  The one exception, ``_from_outcome`` (today's
``RunOutcome`` -> trace), is an adapter to be retired with today's engine;
it is deliberately not imported by this package.
"""

from ._html import render_gallery, render_html, report_name, write_gallery, write_report
from ._trace import FORMAT, Trace, TraceError, parse_trace, problems

__all__ = [
    "FORMAT",
    "Trace",
    "TraceError",
    "parse_trace",
    "problems",
    "render_gallery",
    "render_html",
    "report_name",
    "write_gallery",
    "write_report",
]
