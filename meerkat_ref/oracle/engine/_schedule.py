"""Schedules as files: the JSON that ``check`` writes and ``replay`` reads.

A schedule file is plain data, safe to pass around: nothing in it is ever
executed or used as a path.  The scenario and variant are looked up by name
among the built-in ones; the choices name tasks by label.

Format (``meerkat-ref/schedule@1``)::

    {
      "format": "meerkat-ref/schedule@1",
      "scenario": "turn-save-vs-archive",
      "variant": "seed-0.4.0:save-after-turn",
      "store": "memory",                      # or "sqlite"
      "choices": ["c:turn", {"run": "c:archive", "fault": true}, {"crash": true}, ...],
      "operations": [{"client": ..., "op": ..., "session": ..., "invoked": n,
                      "responded": n, "result": ...}, ...],   # informative
      "violations": [{"rule": ..., "step": n, "message": ...}, ...]  # as recorded
    }

A failed store call may name how it failed, ``{"run": "c:turn", "fault": true,
"kind": "store-error"}`` (one of the target's ``fault_kinds``); without
``kind`` it is the target's plain fault, as in schedules written before kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ._run import RunOutcome
from ._strategies import Choice

FORMAT = "meerkat-ref/schedule@1"


class ScheduleError(ValueError):
    """A schedule file that cannot be used; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class ScheduleFile:
    scenario: str
    variant: str
    store: str
    choices: tuple[Choice, ...]
    violations: tuple[str, ...]  # rules recorded
    steps: int | None
    spec: object = None


def dump(outcome: RunOutcome, store: str, spec: object = None) -> str:
    data: dict[str, object] = {
        "format": FORMAT,
        "scenario": outcome.scenario,
        "variant": outcome.variant,
        "store": store,
        "choices": [c.to_json() for c in outcome.choices],
        "steps": len(outcome.steps),
        "operations": [c.to_json() for c in outcome.history if c.client not in ("post",)],
        "violations": [v.to_json() for v in outcome.violations],
    }
    if spec is not None:
        data["spec"] = spec  # a generated scenario: its operations, to rebuild it
    return json.dumps(data, indent=1) + "\n"


def load(text: str) -> ScheduleFile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScheduleError("SCHEDULE_MALFORMED", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScheduleError("SCHEDULE_MALFORMED", "the top level must be an object")
    if data.get("format") != FORMAT:
        raise ScheduleError(
            "SCHEDULE_FORMAT", f"format must be {FORMAT!r}, got {data.get('format')!r}"
        )
    for key in ("scenario", "variant", "store"):
        if not isinstance(data.get(key), str):
            raise ScheduleError("SCHEDULE_MISSING_FIELD", f"{key!r} must be a string")
    if data["store"] not in ("memory", "sqlite"):
        raise ScheduleError("SCHEDULE_BAD_FIELD", "store must be 'memory' or 'sqlite'")
    raw = data.get("choices")
    if not isinstance(raw, list):
        raise ScheduleError("SCHEDULE_MISSING_FIELD", "'choices' must be a list")
    choices = []
    for n, item in enumerate(raw):
        try:
            choices.append(Choice.from_json(item))
        except ValueError as exc:
            raise ScheduleError("SCHEDULE_BAD_CHOICE", f"choice {n}: {exc}") from None
    rules = []
    for item in data.get("violations", []):
        if isinstance(item, dict) and isinstance(item.get("rule"), str):
            rules.append(item["rule"])
    steps = data.get("steps")
    return ScheduleFile(
        scenario=data["scenario"],
        variant=data["variant"],
        store=data["store"],
        choices=tuple(choices),
        violations=tuple(rules),
        steps=steps if isinstance(steps, int) else None,
        spec=data.get("spec"),
    )
