"""A run's calls and the violations found in it: plain data, for rules, drawings, reports."""

from __future__ import annotations

from dataclasses import dataclass

from ..._model import model
from ...registry import describe, operation
from ._labels import short


@dataclass(frozen=True)
class Violation:
    rule: str
    step: int
    message: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "step": self.step, "message": self.message}


@dataclass
class Call:
    """One client call: plain data, for the history, the drawings and the reports."""

    client: str
    op: object  # the model operation (or a raw wire command, a dict)
    invoked: int
    responded: int | None = None
    result: str | None = None  # "ok", "ok:<detail>", or an error code
    message: str = ""  # for an error: its text
    value: object = None  # the model value it answered
    call_id: str = ""
    index: int = -1  # its place in the history (events name calls by it)

    @property
    def name(self) -> str:
        if isinstance(self.op, dict):
            return str(self.op.get("cmd"))
        return operation(self.op).name

    @property
    def session_id(self) -> str | None:
        """The session the call names (canonical text), if it names one."""
        if isinstance(self.op, dict):
            s = self.op.get("session")
            return s if isinstance(s, str) else None
        n = operation(self.op).session(self.op)
        return None if n is None else model.sid(n)

    @property
    def session(self) -> str | None:
        s = self.session_id
        return None if s is None else short(s)

    @property
    def host(self) -> bool:
        return bool(getattr(self.op, "host_mode", False))

    @property
    def created(self) -> str | None:
        if isinstance(self.value, model.RunResult) and self.name == "create":
            return short(self.value.session_id)
        return None

    @property
    def shown(self) -> tuple[str, ...]:
        if isinstance(self.value, tuple):
            return tuple(short(getattr(s, "session_id", None)) for s in self.value)
        return ()

    def text(self) -> str:
        return self.op.get("cmd", "?") if isinstance(self.op, dict) else describe(self.op)

    def to_json(self) -> dict[str, object]:
        return {
            "client": self.client,
            "op": self.name,
            "call": self.text(),
            "session": self.session,
            "invoked": self.invoked,
            "responded": self.responded,
            "result": self.result,
        }


__all__ = ["Call", "Violation"]
