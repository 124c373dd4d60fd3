"""The child process of the store contract's crash and owner checks (``_store_contract``).

    python -m meerkat_ref.testing._store_child crash KIND DIR   # save and delete until killed
    python -m meerkat_ref.testing._store_child hold KIND DIR    # open the store, say so, wait

``KIND`` is a store kind's name or module path (``store_kind``).  ``crash``
runs 8 writers that save fresh sessions (``crash_session(n)``) and delete
every third right after, printing ``saved N`` / ``deleted N`` once each call
has returned (what the parent may count as acknowledged) and ``deleting N``
before a delete is made (a delete made but not acknowledged may go either
way).  ``hold`` prints
``ready`` once the store is open and then waits to be killed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from .._types import SessionId
from ..store._kinds import StoreKind, store_kind
from ._store_checks import crash_session


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _crash(kind: StoreKind, directory: Path) -> None:
    async with kind.open(directory) as store:

        async def writer(w: int) -> None:
            for i in range(1_000_000):
                n = (w + 1) * 1_000_000 + i
                await store.save(crash_session(n))
                _say(f"saved {n}")
                if i % 3 == 0:
                    _say(f"deleting {n}")  # a delete cut by the kill may or may not land
                    await store.delete(SessionId.from_int(n))
                    _say(f"deleted {n}")

        async with trio.open_nursery() as nursery:
            for w in range(8):
                nursery.start_soon(writer, w)


async def _hold(kind: StoreKind, directory: Path) -> None:
    async with kind.open(directory):
        _say("ready")
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.testing._store_child",
        description="The child process of the store contract's crash and owner checks.")
    parser.add_argument("mode", choices=("crash", "hold"),
                        help="crash: save and delete until killed; hold: open, say so, wait")
    parser.add_argument("kind", help="a store kind's name or module path")
    parser.add_argument("directory", help="the store's directory")
    args = parser.parse_args(argv)
    kind = store_kind(args.kind)
    trio.run(_crash if args.mode == "crash" else _hold, kind, Path(args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
