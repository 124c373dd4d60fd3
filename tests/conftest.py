"""Shared test configuration: Hypothesis profiles.

``MEERKAT_PROFILE`` picks one (default ``dev``; ``.ci/run`` sets ``ci``):

``dev``   quick, for the edit-test loop
``ci``    bounded and derandomized: the whole suite stays well under 10 minutes on
          2 cores, and draws the same examples every run, so a red CI is a change
          in the code, never the luck of a draw
``deep``  long, opt-in (``MEERKAT_PROFILE=deep pytest tests/stateful``), fresh draws
          every run: where new counterexamples are looked for

No deadlines anywhere: examples run real Trio schedulers and SQLite files.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from helpers import STORE_KINDS, AnyStore, StoreKind, close_store, make_store
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("dev", max_examples=25, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=150, print_blob=True, derandomize=True,
                          database=None, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=2000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("MEERKAT_PROFILE", "dev"))


# Shared fixtures: a store of each kind (memory, SQLite in tmp_path), closed after.
@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    return cast(StoreKind, request.param)


@pytest.fixture
async def store(store_kind: StoreKind, tmp_path: Path) -> AsyncIterator[AnyStore]:
    made = make_store(store_kind, tmp_path)
    try:
        yield made
    finally:
        await close_store(made)
