"""A deterministic agent: no model, no network, every output a pure function.

A turn appends the prompt as a user message and ``echo: <prompt>`` as the
assistant's reply, with usage ``scripted_usage(prompt)``.  Between steps it
passes through scheduling points (and, if ``turn_delay`` is set, sleeps that
long in Trio time), so turns interleave with everything else and can be
interrupted part-way.

Host mode (clause HOST-*): handle the prompt, checkpoint, then serve messages
pushed through the session's injector, checkpointing after each, until the
turn is cancelled (interrupt or archive).  A pushed message ``/compact``
rewrites the history to the same length (window 4 of the seed).

The clock is read exactly once per change to the session (creation, each
message, each compaction) so the pure model can predict every timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from .._errors import AgentError, SessionNotFound
from .._seams import DEFAULT_POINTS, Clock, SchedulingPoints, SystemClock
from .._types import (
    AssistantMessage,
    CreateSessionRequest,
    Message,
    RunResult,
    Session,
    SessionId,
    SystemMessage,
    Usage,
    UserMessage,
)
from ._events import AgentEvent, EventKind
from ._protocol import EventSink, SessionCheckpointer

COMPACT_COMMAND = "/compact"
COMPACTED_TEXT = "[compacted]"
FAIL_BUILD_PROMPT = "/fail-build"
"""A create with this prompt is refused by the builder before it takes an id [CREATE]."""
FAIL_TURN_PROMPT = "/fail"
"""A turn (or host loop) with this prompt fails as it starts, appending nothing [TURN]."""


def scripted_usage(prompt: str) -> Usage:
    """Token usage of one scripted turn: a pure function of the prompt."""
    words = len(prompt.split())
    return Usage(input_tokens=words + 1, output_tokens=words + 2)


def scripted_reply(prompt: str) -> str:
    return f"echo: {prompt}"


class ScriptedInjector:
    """Queues messages for a host loop.  Messages wait until the loop serves them."""

    def __init__(self, session_id: SessionId) -> None:
        self._session_id = session_id
        self._send, self.receive = trio.open_memory_channel[str](math.inf)

    def inject(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError("injected message must be a string")
        try:
            self._send.send_nowait(text)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise SessionNotFound(self._session_id) from None

    def close(self) -> None:
        self._send.close()
        self.receive.close()


class ScriptedAgent:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        points: SchedulingPoints,
        checkpointer: SessionCheckpointer | None,
        turn_delay: float,
    ) -> None:
        self._session = session
        self._clock = clock
        self._points = points
        self._checkpointer = checkpointer
        self._turn_delay = turn_delay
        self._injector = ScriptedInjector(session.id)

    @property
    def session_id(self) -> SessionId:
        return self._session.id

    def session(self) -> Session:
        return self._session

    def event_injector(self) -> ScriptedInjector:
        return self._injector

    async def _step(self) -> None:
        await self._points.point("agent.step", self._session.id)

    async def _exchange(self, prompt: str, emit: EventSink) -> RunResult:
        """One user message and one reply; the body of a turn and of a host message."""
        self._session = self._session.push(UserMessage(prompt), self._clock.now())
        await self._step()
        if self._turn_delay > 0:
            await trio.sleep(self._turn_delay)
        reply, usage = scripted_reply(prompt), scripted_usage(prompt)
        self._session = self._session.push(AssistantMessage(reply, usage), self._clock.now())
        emit(AgentEvent(EventKind.TEXT_COMPLETE, self._session.id, reply, usage))
        await self._step()
        return RunResult(text=reply, session_id=self._session.id, usage=usage, turns=1)

    async def run_turn(self, prompt: str, emit: EventSink) -> RunResult:
        await self._step()
        if prompt == FAIL_TURN_PROMPT:
            # An agent's own failure, as a bug would raise it: the service must answer
            # AGENT_ERROR and keep the session (clause TURN).
            raise RuntimeError("the scripted agent fails this prompt")
        emit(AgentEvent(EventKind.RUN_STARTED, self._session.id, prompt))
        result = await self._exchange(prompt, emit)
        emit(AgentEvent(EventKind.RUN_COMPLETED, self._session.id, result.text, result.usage))
        return result

    async def _checkpoint(self) -> None:
        if self._checkpointer is not None:
            await self._points.point("checkpoint", self._session.id)
            await self._checkpointer.checkpoint(self._session)

    def _compact(self) -> None:
        """Rewrite history to the same length: all but the latest reply become a marker."""
        last = max(
            (i for i, m in enumerate(self._session.messages) if isinstance(m, AssistantMessage)),
            default=-1,
        )
        rewritten: list[Message] = []
        for i, message in enumerate(self._session.messages):
            if isinstance(message, UserMessage):
                rewritten.append(UserMessage(COMPACTED_TEXT))
            elif isinstance(message, AssistantMessage) and i != last:
                rewritten.append(AssistantMessage(COMPACTED_TEXT, message.usage))
            else:
                rewritten.append(message)
        self._session = self._session.rewrite(tuple(rewritten), self._clock.now())

    async def run_host_mode(self, prompt: str, emit: EventSink) -> RunResult:
        await self.run_turn(prompt, emit)
        await self._checkpoint()
        while True:
            try:
                text = await self._injector.receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise AgentError("Agent error: host loop input closed") from None
            await self._step()
            emit(AgentEvent(EventKind.HOST_MESSAGE, self._session.id, text))
            if text == COMPACT_COMMAND:
                self._compact()
                emit(AgentEvent(EventKind.COMPACTED, self._session.id))
            else:
                await self._exchange(text, emit)
            await self._checkpoint()


class ScriptedAgentBuilder:
    """Builds ``ScriptedAgent``s.

    ``id_factory`` makes session ids (default: random UUIDs); tests pass a
    counter so ids are predictable.  ``clock`` stamps every change.
    ``fail_build`` makes ``build_agent`` raise for prompts it returns True for
    (to test that a failed build gives its capacity back).
    """

    def __init__(
        self,
        turn_delay: float = 0.0,
        *,
        clock: Clock | None = None,
        points: SchedulingPoints = DEFAULT_POINTS,
        id_factory: Callable[[], SessionId] = SessionId.new,
        fail_build: Callable[[CreateSessionRequest], bool] | None = None,
    ) -> None:
        if turn_delay < 0:
            raise ValueError("turn_delay must not be negative")
        self.turn_delay = turn_delay
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.points = points
        self._id_factory = id_factory
        self._fail_build = fail_build

    async def build_agent(self, req: CreateSessionRequest) -> ScriptedAgent:
        if req.prompt == FAIL_BUILD_PROMPT:
            # Before an id or a tick: the service must answer AGENT_ERROR and give the
            # create's place back (clause CREATE).
            raise RuntimeError("the scripted builder refuses this prompt")
        session_id = self._id_factory()
        await self.points.point("agent.step", session_id)
        if self._fail_build is not None and self._fail_build(req):
            raise AgentError(f"Agent error: build failed for model {req.model!r}")
        now = self.clock.now()
        messages: tuple[Message, ...] = ()
        if req.system_prompt is not None:
            messages = (SystemMessage(req.system_prompt),)
        session = Session(id=session_id, created_at=now, updated_at=now, messages=messages)
        checkpointer = req.build.checkpointer if req.build is not None else None
        return ScriptedAgent(
            session,
            clock=self.clock,
            points=self.points,
            checkpointer=checkpointer,
            turn_delay=self.turn_delay,
        )


def counter_ids(start: int = 1) -> Callable[[], SessionId]:
    """An id factory yielding ``SessionId.from_int(start)``, ``start + 1``, ..."""
    state = [start]

    def next_id() -> SessionId:
        value = SessionId.from_int(state[0])
        state[0] += 1
        return value

    return next_id
