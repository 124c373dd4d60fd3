"""Bad ports: the reference with one clarified rule of spec/ read another way.

Each reading is one a port author could have taken from the spec before it
said the rule once (issue 14); ``conform`` must fail each, under the clause
that states the rule, and quote the rule.

    python tests/ports/misread.py READING     (speaks the adapter protocol on stdio)

READING is one of:

tombstone-first   [ARCHIVE] an archive of an id with no gate puts a tombstone in the
                  map at once, before asking the store (the old CONCURRENCY.md text)
any-uuid-text     [IDS] any text Python's ``uuid.UUID`` reads is an id (the old [IDS])
lenient-fields    [WIRE-FIELDS] unknown fields are ignored, a bad enum value is
                  INVALID_ARGUMENT (what the reference did before)
compact-prompt    [COMPACT] a host-mode prompt ``/compact`` compacts instead of
                  running a turn (a reading of the old ADAPTER.md section 2)
keep-message      [HOST-MESSAGE] a message the host loop was serving when it was
                  interrupted is kept, and served first by the next host loop
hang-read         [LIVENESS] ``read`` of a live session never answers
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import trio

from meerkat_ref import (
    EphemeralSessionService,
    InvalidArgument,
    PersistentSessionService,
    SchedulingPoints,
    SessionId,
    SessionNotFound,
    SessionView,
)
from meerkat_ref.agent import SessionAgentBuilder
from meerkat_ref.agent._protocol import EventSink
from meerkat_ref.agent._scripted import COMPACT_COMMAND, ScriptedAgent
from meerkat_ref.oracle.server import serve
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.registry import _operations
from meerkat_ref.registry._values import Json
from meerkat_ref.service._gate import CheckpointerGate
from meerkat_ref.store import SessionStore

READINGS = (
    "tombstone-first", "any-uuid-text", "lenient-fields", "compact-prompt", "keep-message",
    "hang-read",
)


class TombstoneFirst(PersistentSessionService):
    async def _archive_gate(self, sid: SessionId) -> tuple[CheckpointerGate, bool]:
        gate = self._gates.get(sid)
        if gate is not None:
            return gate, False
        tombstone = self._new_gate(sid)  # the misreading: in the map before any await
        self._gates[sid] = tombstone
        if not await self.store.exists(sid):
            del self._gates[sid]
            raise SessionNotFound(sid)
        return tombstone, True


class HangingRead(PersistentSessionService):
    async def read(self, session_id: SessionId | str) -> SessionView:
        sid = SessionId.parse(session_id)
        try:
            self.inner._get(sid)
        except SessionNotFound:
            pass
        else:
            await trio.sleep_forever()  # the misreading: a call may simply never answer
        return await super().read(session_id)


def any_uuid_text() -> None:
    def parse(cls: type[SessionId], text: object) -> SessionId:
        if isinstance(text, SessionId):
            return text
        try:
            return cls(uuid.UUID(str(text)))
        except ValueError:
            raise InvalidArgument(f"malformed session id {text!r}") from None

    SessionId.parse = classmethod(parse)  # type: ignore[method-assign,assignment]


def lenient_fields() -> None:
    _operations.known_fields = lambda msg, fields: None
    create = _operations.BY_NAME["create"]

    class LenientCreate(_operations.Operation):
        def from_wire(self, msg: Mapping[str, Json]) -> Any:
            if msg.get("initial_turn") not in (None, "run_immediately", "defer"):
                raise InvalidArgument("initial_turn must be run_immediately or defer")
            return super().from_wire(msg)

    _operations.BY_NAME["create"] = LenientCreate(
        **{f.name: getattr(create, f.name) for f in fields(create)})


def compact_prompt() -> None:
    serve_messages = ScriptedAgent.run_host_mode

    async def run_host_mode(self: ScriptedAgent, prompt: str, emit: EventSink) -> Any:
        if prompt != COMPACT_COMMAND:
            return await serve_messages(self, prompt, emit)
        await self._step()
        self._compact()  # the misreading: the prompt compacts
        await self._checkpoint()
        return await _serve(self, emit)

    ScriptedAgent.run_host_mode = run_host_mode  # type: ignore[method-assign]


async def _serve(agent: ScriptedAgent, emit: EventSink, first: str | None = None) -> Any:
    """The host loop's serving part, as the scripted agent has it (with ``first`` served first)."""
    while True:
        text = first if first is not None else await agent._injector.receive.receive()
        first = None
        agent.serving = text  # type: ignore[attr-defined]
        await agent._step()
        if text == COMPACT_COMMAND:
            agent._compact()
        else:
            await agent._exchange(text, emit)
        agent.serving = None  # type: ignore[attr-defined]
        await agent._checkpoint()


def keep_message() -> None:
    async def run_host_mode(self: ScriptedAgent, prompt: str, emit: EventSink) -> Any:
        await self.run_turn(prompt, emit)
        await self._checkpoint()
        kept = getattr(self, "serving", None)  # the misreading: an interrupted message stays
        return await _serve(self, emit, kept)

    ScriptedAgent.run_host_mode = run_host_mode  # type: ignore[method-assign]


def make_for(reading: str) -> Any:
    def make(builder: SessionAgentBuilder, capacity: int, store: SessionStore | None,
             points: SchedulingPoints) -> EphemeralSessionService | PersistentSessionService:
        if store is None:
            return EphemeralSessionService(builder, capacity, points=points)
        cls = {"tombstone-first": TombstoneFirst, "hang-read": HangingRead}.get(
            reading, PersistentSessionService)
        return cls(builder, capacity, store, points=points)

    return make


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in READINGS:
        print(f"usage: misread.py {{{'|'.join(READINGS)}}}", file=sys.stderr)
        return 2
    reading = argv[0]
    patch = {"any-uuid-text": any_uuid_text, "lenient-fields": lenient_fields,
             "compact-prompt": compact_prompt, "keep-message": keep_message}.get(reading)
    if patch is not None:
        patch()
    trio.run(serve, InProcessTarget(make_for(reading), description=reading), reading)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
