"""How the stateful tests draw the next operation, given the model's state.

The kinds of operation, their weights and the domains of their arguments are
the registry's declarations (``meerkat_ref.registry.draws``), interpreted
here as Hypothesis strategies; only the pools' values are this file's (no
failing prompts: the harness compares every answer, and a failing build or
turn says little about the service).  A kind or a domain this file cannot
interpret raises ``DomainError``: a new operation is never left out unseen.
"""

from __future__ import annotations

import os

from hypothesis import strategies as st

from meerkat_ref.registry import (
    Count,
    Domain,
    Drawn,
    Flag,
    OneOf,
    Pool,
    Sessions,
    draws,
)
from meerkat_ref.registry._domains import unknown_domain

from ._model import Op, State

PROFILE = os.environ.get("MEERKAT_PROFILE", "dev")
MAX_STEPS = {"dev": 25, "ci": 30, "deep": 60}.get(PROFILE, 25)
"""Operations per example, at most."""

POOLS: dict[str, list[object]] = {
    "prompt": ["a", "b c", "d e f", "", "/compact"],  # a turn never compacts
    "text": ["x", "/compact", "y z", ""],
    "page": [None, 0, 1, 2],
}


def ids(state: State) -> st.SearchStrategy[int]:
    """Mostly sessions the model knows of (live, stored or archived); sometimes any id."""
    known = Sessions.known(state)
    anything = st.integers(1, state.next_id)
    return st.sampled_from(known) | anything if known else anything


def operations(state: State, persistent: bool) -> st.SearchStrategy[Op]:
    """A kind by its declared weight, in the declared order (shrinking goes left), then its args.

    Store faults are not drawn: the harness has no faulty store to refuse a save.
    """
    kinds = [d for d in draws() for _ in range(d.draw.weight)
             if not d.draw.faults and (persistent or not d.draw.persistent)]
    return st.sampled_from(kinds).flatmap(lambda kind: _op(kind, state))


def _op(kind: Drawn, state: State) -> st.SearchStrategy[Op]:
    args = {attr: _values(kind.name, attr, domain, state) for attr, domain in kind.args}
    built: st.SearchStrategy[Op] = st.fixed_dictionaries(args).map(kind.build)
    return built


def _values(name: str, attr: str, domain: Domain, state: State) -> st.SearchStrategy[object]:
    match domain:
        case Sessions():
            return ids(state)
        case Pool(name=pool) if pool in POOLS:
            return st.sampled_from(POOLS[pool])
        case OneOf(values=values):
            return st.sampled_from(values)
        case Flag():
            return st.booleans()
        case Count(low=low, high=high):
            return st.integers(low, high)
    raise unknown_domain(name, attr, domain, "the stateful tests' strategies")
