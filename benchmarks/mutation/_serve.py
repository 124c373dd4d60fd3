"""``python -m benchmarks.mutation._serve MODULE [ARGS...]``: run MODULE with a mutant served.

The environment variable ``MEERKAT_MUTANT`` (``dotted.module=FILE``) names
the module to replace and the file holding its mutated text.  An import hook
(first on ``sys.meta_path``) serves that file under the module's name, so
every import of it in this process, whoever makes it, gets the mutant; every
other module comes from the installed package as usual.  Nothing in the
working tree is written: the file is in a temporary directory, and its
bytecode cache goes there too.  The variable is inherited, so a process this
one starts through ``_serve`` (the adapter ``conform`` drives) serves the
same mutant.

Also puts cosmic-ray's ``CosmicRayTestingException`` among the builtins:
its ExceptionReplacer writes ``except CosmicRayTestingException:``, meaning
"this handler catches nothing"; without the name such a clause would raise
``NameError`` instead, a different mutant.

Nothing of ``meerkat_ref`` may be imported before ``install`` runs.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

VARIABLE = "MEERKAT_MUTANT"


class CosmicRayTestingException(Exception):
    """Raised by nothing: an ``except`` naming it catches nothing."""


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, path: Path) -> None:
        self.module = module
        self.path = path

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path)


def install() -> str | None:
    """Serve the mutant named by ``MEERKAT_MUTANT``, if any; returns the module name."""
    builtins.CosmicRayTestingException = CosmicRayTestingException  # type: ignore[attr-defined]
    spec = os.environ.get(VARIABLE)
    if not spec:
        return None
    module, _, file = spec.partition("=")
    if module in sys.modules:
        raise RuntimeError(f"{module} was imported before the mutant could be served")
    sys.meta_path.insert(0, _MutantFinder(module, Path(file)))
    atexit.register(_served, module, Path(file))
    return module


def _served(module: str, file: Path) -> None:
    """At exit: if the module was imported, it must have been the mutant (else no verdict)."""
    loaded = sys.modules.get(module)
    where = getattr(loaded, "__file__", None)
    if loaded is not None and where is not None and Path(where) != file:
        # Another finder got there first (pytest's assertion rewriter did, once):
        # a judge that passed the original must not pass for the mutant.
        print(f"_serve: {module} came from {where}, not the mutant", file=sys.stderr, flush=True)
        os._exit(3)


def main(argv: Sequence[str]) -> None:
    usage = "usage: python -m benchmarks.mutation._serve MODULE [ARGS...]"
    if not argv:
        raise SystemExit(usage)
    if argv[0] in ("-h", "--help"):  # only before MODULE: later flags are the module's
        print(usage)
        return
    install()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
