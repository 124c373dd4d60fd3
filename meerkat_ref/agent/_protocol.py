"""What the services need from an agent and a checkpointer.

An agent owns one ``Session``.  The service's session task is the only caller
of an agent, so an agent needs no locks of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._types import CreateSessionRequest, RunResult, Session, SessionCheckpointer, SessionId
from ._events import AgentEvent

EventSink = Callable[[AgentEvent], None]
"""Where an agent publishes its events; never blocks."""


class EventInjector(Protocol):
    """Pushes a message into a session's host loop."""

    def inject(self, text: str) -> None: ...


class SessionAgent(Protocol):
    @property
    def session_id(self) -> SessionId: ...

    def session(self) -> Session:
        """The current session (immutable snapshot)."""
        ...

    def event_injector(self) -> EventInjector | None: ...

    async def run_turn(self, prompt: str, emit: EventSink) -> RunResult:
        """Run one turn.  Cancellation (Trio) ends it; state keeps what was done."""
        ...

    async def run_host_mode(self, prompt: str, emit: EventSink) -> RunResult:
        """Handle ``prompt``, then serve injected messages until cancelled."""
        ...


class SessionAgentBuilder(Protocol):
    async def build_agent(self, req: CreateSessionRequest) -> SessionAgent: ...


__all__ = [
    "EventInjector",
    "EventSink",
    "SessionAgent",
    "SessionAgentBuilder",
    "SessionCheckpointer",
]
