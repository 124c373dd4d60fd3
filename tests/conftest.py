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
from helpers import STORE_KINDS, AnyStore, StoreKind
from hypothesis import HealthCheck, settings

from meerkat_ref.store import store_kind as registered_kind

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# Every profile names its parent: with ``CI`` set in the environment Hypothesis
# loads its own ``ci`` profile (derandomized) first, and a profile registered
# without a parent would inherit from whatever is loaded at that moment.
_BASE = settings.get_profile("default")
settings.register_profile("dev", _BASE, max_examples=25, **_COMMON)
settings.register_profile("ci", _BASE, max_examples=150, print_blob=True, derandomize=True,
                          database=None, **_COMMON)
settings.register_profile("deep", _BASE, max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("MEERKAT_PROFILE", "dev"))

# ``meerkat-ref sweep`` keeps a ledger by default, in the current directory, and resumes
# from it (``oracle/sweep.py``: ``LEDGERS_ENV``).  Empty here: a test that runs the
# command writes none and resumes from none unless it names one (``--ledger``).
os.environ["MEERKAT_SWEEP_LEDGERS"] = ""


# Shared fixtures: a store of each kind of the registry (memory, SQLite in tmp_path),
# opened and closed by its kind, as every command opens one.
@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    return cast(StoreKind, request.param)


@pytest.fixture
async def store(store_kind: StoreKind, tmp_path: Path) -> AsyncIterator[AnyStore]:
    async with registered_kind(store_kind).open(tmp_path) as made:
        yield cast(AnyStore, made)
