"""``python -m benchmarks.mutation``: the oracle's power, measured by generated mutants.

See ``__main__.py`` for the command and ``benchmarks/README.md`` for how it
works.  Nothing here imports ``meerkat_ref`` at import time: ``_serve`` must
install its hook before the first import of the package it serves a mutant of.
"""
