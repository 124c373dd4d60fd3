"""Session labels for people: ``s1`` for the id of session 1 (drawings, messages, reports)."""

from __future__ import annotations

import functools

from ..._types import SessionId


@functools.lru_cache(maxsize=4096)
def short(session: str | None) -> str:
    """``s1`` for the id of session 1 (the label drawings and messages use).

    Cached: every step of every run labels the same few ids.
    """
    if session is None:
        return "-"
    try:
        return SessionId.parse(session).short()
    except ValueError:
        return session[:40]


__all__ = ["short"]
