"""Tools for testing and teaching, kept out of the product's namespace (as ``trio.testing``).

- ``SeedPersistentSessionService``, ``Window``: the seed (meerkat 0.4.0) with
  its four windows reopened, one small override each;
- ``EarlyArchiveNoTombstone``, ``EarlyArchiveStopFirst``: two early versions
  of the reference's ``archive``, whose races ``spec/CONCURRENCY.md`` draws;
- ``check_session_store``, ``run_store_check``, ``STORE_CHECKS``: the store
  contract (``spec/CONTRACT.md`` section 6) as checks a third party's store
  can run, in the spirit of ``trio.testing.check_two_way_stream`` (also
  ``python -m meerkat_ref.testing --store KIND``);
- ``counter_ids``: deterministic session ids; ``TrioPoints``: the production
  scheduling seam, a plain Trio checkpoint; ``PointedStore``: a store whose
  every call is a scheduling point; ``raw_store``: the store under a service's
  scheduling points.

Introspection of a running service is its public ``statistics()``.
"""

from __future__ import annotations

from typing import Any

from .._seams import TrioPoints
from ..agent._scripted import counter_ids
from ..store._base import PointedStore, SessionStore
from ._early import EarlyArchiveNoTombstone, EarlyArchiveStopFirst
from ._seed import ALL_WINDOWS, SeedPersistentSessionService, Window, parse_windows
from ._store_checks import STORE_CHECKS, StoreCheck, StoreCheckSkipped
from ._store_contract import (
    CheckResult,
    StoreContractError,
    StoreReport,
    check_session_store,
    run_store_check,
)


def raw_store(service: Any) -> SessionStore:
    """The store a persistent service writes to, below its scheduling points."""
    pointed: PointedStore = service.store
    return pointed.inner


__all__ = [
    "ALL_WINDOWS",
    "STORE_CHECKS",
    "CheckResult",
    "EarlyArchiveNoTombstone",
    "EarlyArchiveStopFirst",
    "PointedStore",
    "SeedPersistentSessionService",
    "StoreCheck",
    "StoreCheckSkipped",
    "StoreContractError",
    "StoreReport",
    "TrioPoints",
    "Window",
    "check_session_store",
    "counter_ids",
    "parse_windows",
    "raw_store",
    "run_store_check",
]
