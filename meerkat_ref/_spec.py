"""Where ``spec/`` is: installed beside the package, or at the top of a checkout.

The oracle reads the spec at run time (the clause ids of ``CONTRACT.md``, the
vectors), so it judges by exactly the spec it was built with.  A wheel carries
``spec/`` as ``meerkat_ref/spec`` (a setuptools package-dir mapping); an
editable install runs from a checkout, where it is the top-level ``spec/``.
"""

from __future__ import annotations

from pathlib import Path


def spec_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "spec"
    if packaged.is_dir():
        return packaged
    return here.parent / "spec"


def spec_text(name: str) -> str:
    """The text of one file of ``spec/`` (``CONTRACT.md``, ``vectors/concurrent.json``...)."""
    return (spec_dir() / name).read_text(encoding="utf-8")


__all__ = ["spec_dir", "spec_text"]
