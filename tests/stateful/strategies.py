"""How the stateful tests draw the next operation, given the model's state."""

from __future__ import annotations

import os
import uuid

from hypothesis import strategies as st

from ._model import (
    Archive,
    CancelAllCheckpointers,
    Create,
    CreatesAtOnce,
    HostMessage,
    Interrupt,
    List,
    LoadPersisted,
    ObserveStore,
    Op,
    Read,
    RearmAllCheckpointers,
    Restart,
    StartTurn,
    State,
    TurnsAtOnce,
)

PROFILE = os.environ.get("MEERKAT_PROFILE", "dev")
MAX_STEPS = {"dev": 25, "ci": 30, "deep": 60}.get(PROFILE, 25)
"""Operations per example, at most."""

PROMPTS = st.sampled_from(["a", "b c", "d e f", "", "/compact"])  # a turn never compacts
TEXTS = st.sampled_from(["x", "/compact", "y z", ""])
PAGES = st.sampled_from([None, 0, 1, 2])

# Kinds of operation, repeated for weight; simpler kinds first (shrinking goes left).
_KINDS = (
    ["create"] * 6 + ["turn"] * 5 + ["message"] * 5 + ["read"] * 2 + ["list"] * 3
    + ["archive"] * 3 + ["interrupt"] * 3 + ["restart"] * 2 + ["turns_at_once"] * 2
    + ["creates_at_once"] * 2 + ["load", "cancel", "rearm", "observe"]
)
_PERSISTENT_ONLY = {"load", "cancel", "rearm"}


def ids(state: State) -> st.SearchStrategy[int]:
    """Mostly sessions the model knows of (live, stored or archived); sometimes any id."""
    known = sorted({uuid.UUID(i).int for i, _ in (*state.live, *state.store)}
                   | {uuid.UUID(i).int for i in state.archived})
    anything = st.integers(1, state.next_id)
    return st.sampled_from(known) | anything if known else anything


def operations(state: State, persistent: bool) -> st.SearchStrategy[Op]:
    kinds = [k for k in _KINDS if persistent or k not in _PERSISTENT_ONLY]
    return st.sampled_from(kinds).flatmap(lambda kind: _op(kind, state))


def _op(kind: str, state: State) -> st.SearchStrategy[Op]:
    n = ids(state)
    options: dict[str, st.SearchStrategy[Op]] = {
        "create": st.builds(Create, PROMPTS, st.none() | st.just("s"), st.booleans(),
                            st.booleans()),
        "turn": st.builds(StartTurn, n, PROMPTS, st.booleans()),
        "message": st.builds(HostMessage, n, TEXTS),
        "read": st.builds(Read, n),
        "list": st.builds(List, PAGES, PAGES),
        "archive": st.builds(Archive, n),
        "interrupt": st.builds(Interrupt, n),
        "restart": st.just(Restart()),
        "turns_at_once": st.builds(TurnsAtOnce, n, PROMPTS, st.booleans(), st.integers(2, 3)),
        "creates_at_once": st.builds(CreatesAtOnce, st.integers(2, 4), PROMPTS),
        "load": st.builds(LoadPersisted, n),
        "cancel": st.just(CancelAllCheckpointers()),
        "rearm": st.just(RearmAllCheckpointers()),
        "observe": st.just(ObserveStore()),
    }
    return options[kind]
