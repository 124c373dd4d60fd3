"""Serve the reference (or the seed variant) through the adapter protocol: JSON lines on stdio.

    python -m meerkat_ref.adapter [--variant reference|seed-0.4.0|seed-0.4.0:<window>]
                                  [--store KIND[:DIR]] [--capabilities points,faults]

The protocol is ``spec/ADAPTER.md``; the server is ``meerkat_ref.oracle.server``
over the very ``InProcessTarget`` that ``meerkat-ref check`` explores.
``--store`` is the one vocabulary of every command (``store.parse_store``):
``memory`` (default), ``sqlite``, a registered kind or ``package.module:NAME``,
and ``:DIR`` for where each ``open`` makes its store.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import trio

from .oracle.server import CAPABILITIES, serve, stdout_emit
from .store import parse_store
from .variants import Variant


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.adapter",
        description="Serve the reference session service through the adapter protocol "
        "(JSON lines on stdin/stdout; see spec/ADAPTER.md).",
    )
    parser.add_argument(
        "--variant",
        default="reference",
        help="reference (default), seed-0.4.0, or seed-0.4.0:<window>[,<window>]",
    )
    parser.add_argument(
        "--store", default="memory", metavar="KIND[:DIR]",
        help="the store behind the service: memory (default), sqlite, a kind a package "
        "registers, or package.module:NAME; each open makes a fresh one (in DIR if given, "
        "else a temporary directory)",
    )
    parser.add_argument(
        "--capabilities", default=",".join(CAPABILITIES), metavar="LIST",
        help="what hello offers, comma-separated, from: " + ", ".join(CAPABILITIES)
        + " (default: all; an empty list offers none). A command needing one not offered "
        "is answered UNSUPPORTED, as a port without it answers: the oracle's handling of "
        "such ports is tested against the reference itself",
    )
    args = parser.parse_args(argv)
    capabilities = tuple(c.strip() for c in args.capabilities.split(",") if c.strip())
    unknown = sorted(set(capabilities) - set(CAPABILITIES))
    try:
        variant = Variant.parse(args.variant)
        store = parse_store(args.store)
        if store.path is not None and not os.path.isdir(store.path):
            raise ValueError(f"--store {args.store!r}: {store.path!r} is not a directory")
        if unknown:
            raise ValueError(f"--capabilities: unknown {', '.join(unknown)}; known: "
                             f"{', '.join(CAPABILITIES)}")
    except ValueError as exc:
        print(f"meerkat_ref.adapter: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, variant.target(store=store.kind, store_dir=store.path), variant.name,
                 stdout_emit, capabilities, variant.footprints)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
