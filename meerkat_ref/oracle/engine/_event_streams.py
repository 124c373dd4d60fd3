"""Which event streams the contract allows a session to publish, whatever the interleaving.

Clause EVENTS of ``spec/CONTRACT.md``: a turn publishes ``RUN_STARTED(p)``,
``TEXT_COMPLETE(echo: p, usage)``, ``RUN_COMPLETED(echo: p, usage)``; a host
loop then serves messages, each ``HOST_MESSAGE(t)`` followed by
``TEXT_COMPLETE(echo: t, ...)``, or by ``COMPACTED`` for ``/compact``; an
interrupted turn stops wherever it was and the service publishes
``RUN_CANCELLED`` (a turn interrupted before it started publishes only
that); a turn stopped by archive, shutdown or a crash publishes nothing
more: its stream ends.  The sequential model (``models/sessions.py``,
``step_events``) says exactly what each call publishes; under concurrency
the monitor checks, at every step, that each stream read so far is a
sentence of this grammar, with ``stream_problem``.  It is the monitor's
white-box rule EVENTS: the streams are those the in-process target's
subscriber read (``Introspection.events``).
"""

from __future__ import annotations

from ..._model import model

_START = "between turns"  # nothing under way, or a plain turn completed


def _echo(text: str) -> str:
    return f"echo: {text}"


def stream_problem(news: model.News, *, cancels: int, turns: int, running: bool) -> str | None:
    """Why one session's whole stream is not one the contract allows (``None``: it is).

    ``cancels``: interrupts of the session answered ok or still in flight (a
    ``RUN_CANCELLED`` needs one each); ``turns``: its plain turns answered ok
    (each published its ``RUN_COMPLETED`` before it answered); ``running``:
    its task has not ended (the stream ends exactly when the task does).
    """
    state, prompt, reply = _START, "", model.Event("")
    completed = cancelled = 0
    for i, e in enumerate(news.events):
        at = f"event {i + 1} ({e.kind}{' ' + repr(e.text) if e.text else ''})"
        if e.kind == model.RUN_CANCELLED:
            cancelled += 1
            if cancelled > cancels:
                return (f"{at}: {cancelled} cancellations published, but {cancels} interrupt"
                        f"{'s' if cancels != 1 else ''} of the session answered ok or in flight")
            state = _START
        elif e.kind == model.RUN_STARTED and state in (_START, "completed"):
            state, prompt = "started", e.text
        elif e.kind == model.TEXT_COMPLETE and (
                state == "started" or (state == "message" and prompt != model.COMPACT)):
            if e.text != _echo(prompt):
                return f"{at}: the reply to {prompt!r} is {_echo(prompt)!r}"
            state, reply = ("replied" if state == "started" else "serving"), e
        elif e.kind == model.RUN_COMPLETED and state == "replied":
            if (e.text, e.input_tokens, e.output_tokens) != (
                    reply.text, reply.input_tokens, reply.output_tokens):
                return f"{at}: a turn completes with the reply it published ({reply!r})"
            state = "completed"
            completed += 1
        elif e.kind == model.HOST_MESSAGE and state in ("completed", "serving"):
            state, prompt = "message", e.text
        elif e.kind == model.COMPACTED and state == "message" and prompt == model.COMPACT:
            state = "serving"
        else:
            return f"{at} cannot follow what came before it (the stream so far: {state})"
    if completed < turns:
        return (f"{turns} plain turns answered ok, but {completed} RUN_COMPLETED published: a "
                "turn's events are published before it answers")
    if news.lagged:
        return f"a subscriber reading at every step lost {news.lagged} events (lagged)"
    if news.ended and running:
        return "its stream ended while its session task still runs"
    if not news.ended and not running:
        return "its session task has ended, but its stream has not"
    return None


__all__ = ["stream_problem"]
