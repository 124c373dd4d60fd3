"""Exception groups with one exception in them, given back as that exception.

Trio's nurseries always raise ``ExceptionGroup``s (strict groups), even for a
single error.  A library that runs a nursery on the caller's behalf -- a
service's ``async with``, the oracle's adapter target -- should not make its
callers write ``except*`` to catch a plain ``SessionNotFound``: when a group
holds exactly one exception (however deeply nested), that exception is
raised instead, as well-behaved Trio libraries do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception ``group`` holds, or ``None`` if it holds several."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending and len(leaves) < 2:
        item = pending.pop()
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    return leaves[0] if len(leaves) == 1 and not pending else None


@contextlib.contextmanager
def unwrap_single() -> Iterator[None]:
    """Inside this block, a group of one exception is raised as that exception."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = single(group)
        if leaf is None:
            raise
        raise leaf from None


__all__ = ["single", "unwrap_single"]
