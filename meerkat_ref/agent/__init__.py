"""Agents: the protocol the services need, events, and the scripted agent."""

from ._events import AgentEvent, EventBroadcast, EventKind, EventStream
from ._protocol import EventInjector, SessionAgent, SessionAgentBuilder, SessionCheckpointer
from ._scripted import (
    COMPACT_COMMAND,
    COMPACTED_TEXT,
    ScriptedAgent,
    ScriptedAgentBuilder,
    ScriptedInjector,
    scripted_reply,
    scripted_usage,
)

__all__ = [
    "COMPACTED_TEXT",
    "COMPACT_COMMAND",
    "AgentEvent",
    "EventBroadcast",
    "EventInjector",
    "EventKind",
    "EventStream",
    "ScriptedAgent",
    "ScriptedAgentBuilder",
    "ScriptedInjector",
    "SessionAgent",
    "SessionAgentBuilder",
    "SessionCheckpointer",
    "scripted_reply",
    "scripted_usage",
]
