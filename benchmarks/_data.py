"""Synthetic sessions and fast ways to put many of them in a store.

Rows written here are real: the SQLite bodies come from ``encode_session``
and the listing columns from the same values ``SqliteStore.save`` writes, so
the store can ``load``, ``list`` and ``check`` them like any other row.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from meerkat_ref import (
    AssistantMessage,
    Message,
    Session,
    SessionId,
    SessionStore,
    SystemMessage,
    Usage,
    UserMessage,
)
from meerkat_ref.agent import scripted_reply, scripted_usage
from meerkat_ref.store._codec import encode_metadata, encode_session
from meerkat_ref.store._sqlite import _UPSERT

Row = tuple[str, int, int, int, int, str, str]

_WORDS = (
    "list", "the", "sessions", "that", "changed", "since", "yesterday", "and",
    "summarise", "what", "each", "one", "was", "about", "so", "the", "operator",
    "can", "decide", "which", "to", "archive", "first",
)  # fmt: skip


def prompt_text(i: int, words: int = 12) -> str:
    """A deterministic prompt of ``words`` words (about 70 characters at 12)."""
    start = i % len(_WORDS)
    picked = [_WORDS[(start + k) % len(_WORDS)] for k in range(words)]
    return " ".join(picked)


def make_session(
    session_id: SessionId,
    updated_at: int,
    *,
    exchanges: int = 1,
    system: bool = True,
) -> Session:
    """A session as the scripted agent would leave it after ``exchanges`` turns."""
    messages: list[Message] = []
    if system:
        messages.append(SystemMessage("You are a helpful assistant."))
    usage = Usage()
    for k in range(exchanges):
        prompt = prompt_text(updated_at + k)
        turn_usage = scripted_usage(prompt)
        messages.append(UserMessage(prompt))
        messages.append(AssistantMessage(scripted_reply(prompt), turn_usage))
        usage = usage + turn_usage
    created_at = updated_at - 1000 * (exchanges + 1)
    return Session(
        id=session_id,
        created_at=created_at,
        updated_at=updated_at,
        messages=tuple(messages),
        usage=usage,
        revision=len(messages),
    )


def random_ids(count: int, seed: int) -> Iterator[SessionId]:
    """``count`` distinct, reproducible random UUIDs (so index order is not insertion order)."""
    rng = random.Random(seed)
    seen: set[int] = set()
    while len(seen) < count:
        value = rng.getrandbits(128)
        if value in seen:
            continue
        seen.add(value)
        yield SessionId(uuid.UUID(int=value))


def stored_sessions(count: int, *, newest: int, seed: int = 6) -> Iterator[Session]:
    """``count`` short sessions (system prompt and one exchange: 3 messages).

    ``updated_at`` runs ``newest - count + 1 .. newest``: all distinct, all
    older than ``newest``.
    """
    for i, session_id in enumerate(random_ids(count, seed)):
        yield make_session(session_id, newest - count + 1 + i)


def row_of(session: Session) -> Row:
    """The row ``SqliteStore.save`` writes for ``session`` (same columns, same encoders)."""
    return (
        str(session.id),
        session.created_at,
        session.updated_at,
        session.message_count,
        session.total_tokens(),
        encode_metadata(session.metadata),
        encode_session(session),
    )


def bulk_insert(path: Path, sessions: Iterable[Session]) -> int:
    """Insert ``sessions`` into an existing store file in one transaction.

    The file must already have the store's schema (open a ``SqliteStore`` on
    it first).  Uses the store's own upsert statement; returns the row count.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        before = conn.total_changes
        conn.executemany(_UPSERT, (row_of(s) for s in sessions))
        conn.execute("COMMIT")
        return conn.total_changes - before
    finally:
        conn.close()


def remove_db(path: Path) -> None:
    """Delete a SQLite file and its WAL companions, if there."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


async def fill_memory(store: SessionStore, sessions: Iterable[Session]) -> int:
    """Save every session through the store's own ``save`` (fast enough in memory)."""
    count = 0
    for session in sessions:
        await store.save(session)
        count += 1
    return count
