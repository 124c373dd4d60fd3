"""Shared test configuration: Hypothesis profiles.

``MEERKAT_PROFILE`` picks one (default ``dev``; ``.ci/run`` sets ``ci``):

``dev``   quick, for the edit-test loop
``ci``    bounded: the whole suite stays well under 10 minutes on 2 cores
``deep``  long, opt-in (``MEERKAT_PROFILE=deep pytest tests/stateful``)

No deadlines anywhere: examples run real Trio schedulers and SQLite files.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("dev", max_examples=25, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=150, print_blob=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=2000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("MEERKAT_PROFILE", "dev"))
