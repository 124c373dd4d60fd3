"""What values an operation's arguments take: declared once, interpreted by every generator.

An operation of the registry says, per model attribute, the *domain* its
value is drawn from (a session, a prompt, a flag...), how often a random
sequence draws it (``Draw``), and which calls the sweep makes of it
(``SweepCall``).  Three generators interpret these declarations instead of
listing operations themselves: the vectors' random draw
(``oracle/engine/_cases.py``), the stateful tests' Hypothesis strategies
(``tests/stateful/strategies.py``) and the sweep's alphabet
(``oracle/sweep.py``).  A generator that meets an operation that declares
nothing for it, or a domain it does not know, raises ``DomainError`` naming
the operation and what to declare: a new operation forgotten by a generator
fails a test instead of being skipped.

Pools (``Pool``) are named, not listed here: each generator holds its own
values for ``prompt``, ``text`` and ``page`` (the random draw tries the
agent's failing prompts, the stateful tests do not).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._model import model


class DomainError(TypeError):
    """A generator cannot interpret an operation's declaration: the message says what to add."""


@dataclass(frozen=True)
class Sessions:
    """A session by its ``n``: mostly one the model knows (live, stored, archived), else any.

    ``known`` is the first half for every generator alike; "any" is an ``n``
    from 1 to the state's next id (a session not created yet included).
    """

    @staticmethod
    def known(state: model.State) -> list[int]:
        """The ``n`` of every session ``state`` knows of (live, stored or archived), in order."""
        ids = {i for i, _ in (*state.live, *state.store)} | set(state.archived)
        return sorted(uuid.UUID(i).int for i in ids)  # the inverse of ``model.sid``


@dataclass(frozen=True)
class Pool:
    """A value from the generator's own pool of that name: ``prompt``, ``text``, ``page``."""

    name: str


@dataclass(frozen=True)
class OneOf:
    """One of these values."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Flag:
    """A boolean; a random draw makes it true with probability ``p``."""

    p: float


@dataclass(frozen=True)
class Count:
    """An integer from ``low`` to ``high``, both included."""

    low: int
    high: int


Domain = Sessions | Pool | OneOf | Flag | Count


@dataclass(frozen=True)
class Draw:
    """How a random sequence draws an operation.

    ``weight`` entries of it stand in the draw's list, at ``rank`` among the
    others (the checked-in random vectors were drawn with the list in this
    order, so a new operation takes a rank after every other and leaves them
    as they are).  ``persistent``: drawn only against a persistent service;
    ``faults``: only when the draw asks for store faults.
    """

    weight: int
    rank: int
    persistent: bool = False
    faults: bool = False


@dataclass(frozen=True)
class SweepCall:
    """A call the sweep makes of an operation: its label, and the attributes it fixes.

    The session attribute, if the operation has one, is filled in by the
    sweep (one call per session of the scope, labelled ``<label><n>`` when
    there are several).
    """

    label: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Drawn:
    """One kind of model operation as the generators see it: its attributes' domains, its draw."""

    name: str
    model: type[Any]
    args: tuple[tuple[str, Domain], ...]  # (model attribute, domain), in the model's order
    draw: Draw

    def build(self, values: Mapping[str, Any]) -> Any:
        return self.model(**values)


def undeclared(name: str, piece: str, hint: str) -> DomainError:
    """The error a generator raises when ``name`` declares no ``piece``."""
    return DomainError(f"operation {name!r} declares no {piece}: {hint}")


def unknown_domain(name: str, attr: str, domain: object, generator: str) -> DomainError:
    return DomainError(
        f"operation {name!r}: {generator} cannot interpret the domain {domain!r} of {attr!r}"
    )


__all__ = [
    "Count",
    "Domain",
    "DomainError",
    "Draw",
    "Drawn",
    "Flag",
    "OneOf",
    "Pool",
    "Sessions",
    "SweepCall",
    "undeclared",
    "unknown_domain",
]
