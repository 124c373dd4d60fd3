"""The rules the monitor checks: one class per clause of ``spec/CONTRACT.md``, one job each.

Each module here declares rules (``Rule`` subclasses: ``_base``); ``RULE_CLASSES``
is every one of them, found by importing the modules of this package -- so a
new rule is a new class in a module here, and nothing else: the monitor
dispatches to it, ``RULES`` lists it, the docstring table of ``_monitor`` and
the traceability table of ``spec/CONTRACT.md`` show it.
"""

from __future__ import annotations

from ._base import FAULT, HOOKS, Evidence, Excuse, Rule, discover, table

RULE_CLASSES: tuple[type[Rule], ...] = discover(__name__, __path__)
"""Every rule, in ``order``."""

__all__ = ["FAULT", "HOOKS", "RULE_CLASSES", "Evidence", "Excuse", "Rule", "table"]
