"""Errors of the session contract, each with a stable wire code.

One subclass per code, so callers can ``except SessionBusy`` and adapters can
send ``err.code``.  The codes are the Rust crate's, unchanged.
"""

from __future__ import annotations

from ._types import SessionId


class SessionError(Exception):
    """Base of every error the services raise on purpose.

    ``code`` is stable across releases and languages; ``session_id`` names the
    session concerned where there is one.
    """

    code: str = "SESSION_ERROR"

    def __init__(self, message: str, *, session_id: SessionId | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class SessionNotFound(SessionError):
    code = "SESSION_NOT_FOUND"

    def __init__(self, session_id: SessionId) -> None:
        super().__init__(f"session not found: {session_id}", session_id=session_id)


class SessionBusy(SessionError):
    code = "SESSION_BUSY"

    def __init__(self, session_id: SessionId) -> None:
        super().__init__(f"session is busy: {session_id}", session_id=session_id)


class SessionPersistenceDisabled(SessionError):
    code = "SESSION_PERSISTENCE_DISABLED"


class SessionCompactionDisabled(SessionError):
    code = "SESSION_COMPACTION_DISABLED"


class SessionNotRunning(SessionError):
    code = "SESSION_NOT_RUNNING"

    def __init__(self, session_id: SessionId) -> None:
        super().__init__(f"session is not running: {session_id}", session_id=session_id)


class SessionStoreError(SessionError):
    code = "SESSION_STORE_ERROR"


class AgentError(SessionError):
    """The agent failed, was cancelled, or the service is at capacity."""

    code = "AGENT_ERROR"


CANCELLED_TEXT = "Agent error: run cancelled"
"""The text a turn ends with when it is interrupted or its session archived."""


def capacity_error(active: int, reserved: int, max_sessions: int) -> AgentError:
    """The seed's capacity error: ``Max sessions reached (a/m)``, then what holds the places.

    The text starts as the seed's does (``a`` live sessions of ``m``); when
    creates in flight also hold places, it says how many, so a refusal that
    reads "0/50" during a burst of creates is not a puzzle.
    """
    text = f"Max sessions reached ({active}/{max_sessions})"
    if reserved > active:
        text += f"; {reserved - active} more being created or stopping"
    return AgentError(text)


ERROR_CODES: tuple[str, ...] = (
    SessionNotFound.code,
    SessionBusy.code,
    SessionPersistenceDisabled.code,
    SessionCompactionDisabled.code,
    SessionNotRunning.code,
    SessionStoreError.code,
    AgentError.code,
)
