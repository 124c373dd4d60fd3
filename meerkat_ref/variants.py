"""Which service runs in process: the reference, or the seed with some of its windows open.

``Variant.parse`` reads the names the command line takes (``reference``,
``seed-0.4.0``, ``seed-0.4.0:<window>[,<window>]``) and gives a service factory;
``Variant.target`` wraps it as an ``InProcessTarget``.  It sits with the doors
(``cli``, the adapter server's ``main``) because it is the one place the
product reaches the test-only seed variant (``meerkat_ref.testing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._seams import Footprints, SchedulingPoints
from .agent._protocol import SessionAgentBuilder
from .oracle.targets import InProcessTarget, ServiceFactory
from .service._ephemeral import EphemeralSessionService
from .service._persistent import PersistentSessionService
from .store._base import SessionStore
from .store._kinds import StoreKind
from .testing import ALL_WINDOWS, SeedPersistentSessionService, Window, parse_windows


def _reference(
    builder: SessionAgentBuilder, capacity: int, store: SessionStore | None,
    points: SchedulingPoints,
) -> Any:
    if store is None:
        return EphemeralSessionService(builder, capacity, points=points)
    return PersistentSessionService(builder, capacity, store, points=points)


def _seed(windows: frozenset[Window]) -> ServiceFactory:
    def make(
        builder: SessionAgentBuilder, capacity: int, store: SessionStore | None,
        points: SchedulingPoints,
    ) -> Any:
        if store is None:
            return EphemeralSessionService(builder, capacity, points=points)
        return SeedPersistentSessionService(
            builder, capacity, store, points=points, windows=windows
        )

    return make


@dataclass(frozen=True)
class Variant:
    """A named service factory."""

    name: str
    windows: frozenset[Window] = frozenset()

    @staticmethod
    def parse(text: str) -> Variant:
        """``reference``, ``seed-0.4.0`` (all windows), or ``seed-0.4.0:<window>[,<window>]``."""
        if text == "reference":
            return Variant("reference")
        if text == "seed-0.4.0":
            return Variant("seed-0.4.0", ALL_WINDOWS)
        if text.startswith("seed-0.4.0:"):
            return Variant(text, parse_windows(text.split(":", 1)[1].split(",")))
        raise ValueError(
            f"unknown variant {text!r}; use reference, seed-0.4.0 or seed-0.4.0:<window>"
        )

    @property
    def factory(self) -> ServiceFactory:
        return _reference if self.name == "reference" else _seed(self.windows)

    @property
    def footprints(self) -> Footprints:
        """What this variant's persistent service declares (the adapter's ``hello`` offers it)."""
        if self.name == "reference":
            return PersistentSessionService.footprints
        return SeedPersistentSessionService.footprints

    def target(self, store: str | StoreKind = "memory", store_dir: str | None = None,
               **options: Any) -> InProcessTarget:
        """This variant in process, over a store of the kind ``store`` names (``store.store_kind``)
        made in ``store_dir`` (default: a scratch directory)."""
        # The seed's calls park where the seed did (an export before a turn's save,
        # a lock around its map): not the reference's placement table.
        options.setdefault("placement", self.name == "reference")
        return InProcessTarget(
            self.factory, description=self.name, store=store, store_dir=store_dir, **options
        )


__all__ = ["Variant"]
