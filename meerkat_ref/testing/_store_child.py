"""The child process of the store contract's crash and owner checks (``_store_contract``).

    python -m meerkat_ref.testing._store_child crash KIND DIR   # save and delete until killed
    python -m meerkat_ref.testing._store_child hold KIND DIR    # open the store, say so, wait

``KIND`` is a store kind's name or module path (``store_kind``).  ``crash``
runs 8 writers that save fresh sessions (``crash_session(n)``) and delete
every third right after, printing ``saved N`` / ``deleted N`` once each call
has returned: what the parent may count as acknowledged.  ``hold`` prints
``ready`` once the store is open and then waits to be killed.
"""

from __future__ import annotations

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
                    await store.delete(SessionId.from_int(n))
                    _say(f"deleted {n}")

        async with trio.open_nursery() as nursery:
            for w in range(8):
                nursery.start_soon(writer, w)


async def _hold(kind: StoreKind, directory: Path) -> None:
    async with kind.open(directory):
        _say("ready")
        await trio.sleep_forever()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("crash", "hold"):
        print("usage: python -m meerkat_ref.testing._store_child crash|hold KIND DIR",
              file=sys.stderr)
        return 2
    mode, spec, directory = argv
    kind = store_kind(spec)
    trio.run(_crash if mode == "crash" else _hold, kind, Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
