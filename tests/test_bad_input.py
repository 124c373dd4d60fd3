"""Bad input: rejected early, with a clear error and a stable code, and harmless.

Every entry point that takes a session id rejects a malformed one with
``InvalidArgument`` (a ``ValueError``) naming the problem, and an unknown but
well-formed one with ``SESSION_NOT_FOUND``.  Requests and queries validate
themselves when built.  After every rejected call the service still works: a
normal create and turn succeed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing
from helpers import (
    SERVICE_KINDS,
    AnyService,
    ServiceKind,
    assert_healthy,
    create_req,
    error_of,
    make_builder,
    open_persistent,
    open_service,
    settle,
    sid,
    spawn,
    turn_req,
)

from meerkat_ref import (
    ERROR_CODES,
    AgentError,
    CreateSessionRequest,
    EphemeralSessionService,
    InitialTurnPolicy,
    InvalidArgument,
    MemoryStore,
    PersistentSessionService,
    ScriptedAgentBuilder,
    Session,
    SessionBusy,
    SessionCompactionDisabled,
    SessionError,
    SessionFilter,
    SessionId,
    SessionMeta,
    SessionNotFound,
    SessionNotRunning,
    SessionPersistenceDisabled,
    SessionQuery,
    SessionStoreError,
    StartTurnRequest,
)
from meerkat_ref.testing import SeedPersistentSessionService


@pytest.fixture(params=SERVICE_KINDS)
def kind(request: pytest.FixtureRequest) -> ServiceKind:
    return cast(ServiceKind, request.param)


IdCall = Callable[[AnyService, Any], Awaitable[object]]


async def _load_persisted(svc: AnyService, session_id: Any) -> object:
    assert isinstance(svc, PersistentSessionService)
    return await svc.load_persisted(session_id)


ID_METHODS: dict[str, IdCall] = {
    "start_turn": lambda svc, i: svc.start_turn(i, turn_req("x")),
    "interrupt": lambda svc, i: svc.interrupt(i),
    "read": lambda svc, i: svc.read(i),
    "archive": lambda svc, i: svc.archive(i),
    "subscribe_session_events": lambda svc, i: svc.subscribe_session_events(i),
    "event_injector": lambda svc, i: svc.event_injector(i),
    "export_session": lambda svc, i: svc.export_session(i),
    "load_persisted": _load_persisted,
}

# Every (service, method) pair there is: load_persisted is persistent-only.
KIND_METHODS = [
    (k, m) for k in SERVICE_KINDS for m in ID_METHODS if (k, m) != ("ephemeral", "load_persisted")
]

MALFORMED: list[object] = [
    "",
    "xyz",
    42,
    None,
    "   ",
    "00000000-0000-0000-0000-00000000000g",
    b"00000000-0000-0000-0000-000000000001",
    1.5,
]


# -- session ids ------------------------------------------------------------------


@pytest.mark.parametrize(("service_kind", "method"), KIND_METHODS)
@pytest.mark.parametrize("bad", MALFORMED, ids=repr)
async def test_malformed_id_is_invalid_argument(
    service_kind: ServiceKind, tmp_path: Path, method: str, bad: object
) -> None:
    async with open_service(service_kind, tmp_path) as svc:
        existing = (await svc.create_session(create_req("first"))).session_id
        with pytest.raises(InvalidArgument) as info:
            await ID_METHODS[method](svc, bad)
        err = info.value
        assert isinstance(err, ValueError)
        assert not isinstance(err, SessionError)
        assert err.code == "INVALID_ARGUMENT"
        message = str(err)
        assert "session id" in message
        if isinstance(bad, str):
            assert repr(bad) in message
        else:
            assert type(bad).__name__ in message
        # Nothing was touched: the existing session is as it was, and the service works.
        view = await svc.read(existing)
        assert (view.state.message_count, view.state.is_active) == (2, False)
        await assert_healthy(svc)


@pytest.mark.parametrize(("service_kind", "method"), KIND_METHODS)
@pytest.mark.parametrize("form", ["SessionId", "text"])
async def test_unknown_id_is_not_found(
    service_kind: ServiceKind, tmp_path: Path, method: str, form: str
) -> None:
    unknown = SessionId.from_int(0xDEAD)
    as_given: object = unknown if form == "SessionId" else str(unknown)
    async with open_service(service_kind, tmp_path) as svc:
        await svc.create_session(create_req("first"))
        if method in ("event_injector", "load_persisted"):
            assert await ID_METHODS[method](svc, as_given) is None
        else:
            with pytest.raises(SessionNotFound) as info:
                await ID_METHODS[method](svc, as_given)
            assert info.value.code == "SESSION_NOT_FOUND"
            assert info.value.session_id == unknown
            assert str(unknown) in str(info.value)
        await assert_healthy(svc)


async def test_text_and_object_ids_name_the_same_session(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        s = (await svc.create_session(create_req("first"))).session_id
        assert await svc.read(str(s)) == await svc.read(s)
        with pytest.raises(InvalidArgument):  # one id, one text: canonical only (clause IDS)
            await svc.read("{" + str(s) + "}")
        await svc.start_turn(str(s), turn_req("by text"))
        assert (await svc.read(s)).state.message_count == 4
        await svc.archive(str(s))
        with pytest.raises(SessionNotFound):
            await svc.read(s)


# -- requests and queries -------------------------------------------------------------


@pytest.mark.parametrize("model", ["", " ", "\t\n", None, 42])
def test_blank_or_non_text_model_is_invalid(model: object) -> None:
    with pytest.raises(InvalidArgument, match="model"):
        CreateSessionRequest(model=cast(str, model), prompt="p")


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": None},
        {"prompt": 3},
        {"system_prompt": 5},
        {"max_tokens": 0},
        {"max_tokens": -1},
        {"max_tokens": True},
        {"max_tokens": "5"},
        {"initial_turn": "defer"},
    ],
    ids=repr,
)
def test_bad_create_request_fields_are_invalid(fields: dict[str, Any]) -> None:
    (name,) = fields
    with pytest.raises(InvalidArgument, match=name):
        CreateSessionRequest(**{"model": "m", "prompt": "p", **fields})


@pytest.mark.parametrize("prompt", [None, 1, b"bytes"])
def test_bad_turn_prompt_is_invalid(prompt: object) -> None:
    with pytest.raises(InvalidArgument, match="prompt"):
        StartTurnRequest(prompt=cast(str, prompt))


def test_good_requests_are_accepted() -> None:
    req = CreateSessionRequest(model=" m ", prompt="", max_tokens=1, system_prompt="")
    assert req.initial_turn is InitialTurnPolicy.RUN_IMMEDIATELY
    assert StartTurnRequest(prompt="").host_mode is False


# Regression: host_mode was not validated, so the string "false" ran a host loop.
@pytest.mark.parametrize("make", ["create", "turn"])
def test_non_bool_host_mode_is_invalid(make: str) -> None:
    with pytest.raises(InvalidArgument, match="host_mode"):
        if make == "create":
            CreateSessionRequest(model="m", prompt="p", host_mode=cast(bool, "false"))
        else:
            StartTurnRequest(prompt="p", host_mode=cast(bool, "false"))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"limit": -1}, ["limit", "negative"]),
        ({"offset": -1}, ["offset", "negative"]),
        ({"limit": -100, "offset": 0}, ["limit", "negative"]),
        ({"limit": True}, ["limit"]),
        ({"offset": False}, ["offset"]),
        ({"limit": "3"}, ["limit"]),
        ({"offset": 1.5}, ["offset"]),
    ],
    ids=repr,
)
def test_bad_page_is_invalid(fields: dict[str, Any], words: list[str]) -> None:
    for make in (SessionQuery, SessionFilter):
        with pytest.raises(InvalidArgument) as info:
            make(**fields)
        for word in words:
            assert word in str(info.value)


async def test_zero_page_and_large_offset_are_fine(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        await svc.create_session(create_req("a"))
        assert await svc.list(SessionQuery(limit=0)) == []
        assert await svc.list(SessionQuery(offset=10**6)) == []
        assert len(await svc.list(SessionQuery(limit=10**6))) == 1


# -- wrong types ----------------------------------------------------------------------


def _assert_invalid(err: BaseException, *words: str) -> None:
    """Malformed input: ``InvalidArgument`` (a ``ValueError``) with its stable code."""
    assert isinstance(err, InvalidArgument) and isinstance(err, ValueError)
    assert not isinstance(err, SessionError)
    assert err.code == "INVALID_ARGUMENT"
    for word in words:
        assert word in str(err)


# Regression (issue 11): these were plain TypeErrors, with no code.
async def test_non_request_objects_are_invalid_arguments(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        s = (await svc.create_session(create_req("first"))).session_id
        calls: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (lambda: svc.create_session(cast(Any, "hello")), "str"),
            (lambda: svc.create_session(cast(Any, None)), "NoneType"),
            (lambda: svc.create_session(cast(Any, turn_req("x"))), "StartTurnRequest"),
            (lambda: svc.start_turn(s, cast(Any, "x")), "str"),
            (lambda: svc.start_turn(s, cast(Any, None)), "NoneType"),
            (lambda: svc.start_turn(s, cast(Any, create_req("x"))), "CreateSessionRequest"),
            (lambda: svc.list(cast(Any, "x")), "str"),
            (lambda: svc.list(cast(Any, None)), "NoneType"),
            (lambda: svc.list(cast(Any, SessionFilter())), "SessionFilter"),
        ]
        for call, given in calls:
            with pytest.raises(InvalidArgument) as info:
                await call()
            _assert_invalid(info.value, "takes a", given)
            view = await svc.read(s)
            assert (view.state.message_count, view.state.is_active) == (2, False)
        injector = await svc.event_injector(s)
        assert injector is not None
        with pytest.raises(TypeError):  # the agent's injector: not the service's input
            injector.inject(cast(Any, 42))
        assert len(await svc.list()) == 1
        await assert_healthy(svc)


# Regression: the persistent service looked the id up before checking the request type.
@pytest.mark.parametrize("service_kind", ["ephemeral", "persistent-memory", "persistent-sqlite"])
async def test_non_request_to_unknown_id_is_invalid(
    service_kind: ServiceKind, tmp_path: Path
) -> None:
    async with open_service(service_kind, tmp_path) as svc:
        with pytest.raises(InvalidArgument) as info:
            await svc.start_turn(SessionId.from_int(0xDEAD), cast(Any, "x"))
        _assert_invalid(info.value, "start_turn takes a StartTurnRequest")


# Regression (issue 11): a plain ValueError, with no code.
@pytest.mark.parametrize("bad", [0, -1, True, False, 1.5, "3", None, "x" * 10**6],
                         ids=lambda v: repr(v)[:12])
@pytest.mark.parametrize("service", ["ephemeral", "persistent", "seed"])
def test_bad_max_sessions_is_invalid(bad: object, service: str) -> None:
    builder = make_builder()
    with pytest.raises(InvalidArgument) as info:
        if service == "ephemeral":
            EphemeralSessionService(builder, cast(int, bad))
        elif service == "persistent":
            PersistentSessionService(builder, cast(int, bad), MemoryStore())
        else:
            SeedPersistentSessionService(builder, cast(int, bad), MemoryStore())
    _assert_invalid(info.value, "max_sessions")
    assert len(str(info.value)) < 200  # a huge value is quoted, not echoed whole


# Regression (issue 11): accepted, then failing later (the first save; inside the build).
@pytest.mark.parametrize("store", [None, "sessions.db", object(), SessionFilter()],
                         ids=["None", "path", "object", "filter"])
def test_something_that_is_not_a_store_is_refused_at_once(store: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        PersistentSessionService(make_builder(), 2, cast(Any, store))
    _assert_invalid(info.value, "store must be a SessionStore", type(store).__name__)


@pytest.mark.parametrize("builder", [None, "scripted", MemoryStore()],
                         ids=["None", "str", "store"])
def test_something_that_is_not_a_builder_is_refused_at_once(builder: object) -> None:
    for make in (lambda: EphemeralSessionService(cast(Any, builder), 2),
                 lambda: PersistentSessionService(cast(Any, builder), 2, MemoryStore())):
        with pytest.raises(InvalidArgument) as info:
            make()
        _assert_invalid(info.value, "builder must be a SessionAgentBuilder")


@pytest.mark.parametrize("build", ["x", 1, object(), {"checkpointer": None}],
                         ids=["str", "int", "object", "dict"])
def test_bad_build_options_are_invalid(build: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        CreateSessionRequest(model="m", prompt="p", build=cast(Any, build))
    _assert_invalid(info.value, "build must be a BuildOptions or None")


async def test_a_huge_malformed_id_is_quoted_not_echoed(kind: ServiceKind, tmp_path: Path) -> None:
    huge = "x" * 10_000_000
    async with open_service(kind, tmp_path) as svc:
        with pytest.raises(InvalidArgument) as info:
            await svc.read(huge)
    _assert_invalid(info.value, "malformed session id", "10,000,000 characters")
    assert len(str(info.value)) < 200


# Regression (issue 11): an error inside the block reached the caller as an ExceptionGroup.
@pytest.mark.parametrize("service_kind", SERVICE_KINDS)
async def test_an_error_inside_the_service_block_is_raised_as_itself(
    service_kind: ServiceKind, tmp_path: Path
) -> None:
    with pytest.raises(SessionNotFound) as info:
        async with open_service(service_kind, tmp_path) as svc:
            await svc.create_session(create_req("first"))
            await svc.read(SessionId.from_int(0xDEAD))
    assert info.value.session_id == SessionId.from_int(0xDEAD)
    caught = False
    (tmp_path / "again").mkdir()
    try:
        async with open_service(service_kind, tmp_path / "again") as svc:
            raise KeyError("mine")
    except KeyError as exc:  # a plain except, as around any library
        caught = exc.args == ("mine",)
    assert caught


def test_negative_turn_delay_is_value_error() -> None:
    with pytest.raises(ValueError, match="turn_delay"):
        ScriptedAgentBuilder(-0.5)


async def test_calling_before_entering_the_service_is_a_clear_error() -> None:
    svc = EphemeralSessionService(make_builder(), 2)
    with pytest.raises(RuntimeError, match="async with"):
        await svc.create_session(create_req("x"))
    async with svc:  # and the service is still usable afterwards
        await assert_healthy(svc)


# -- stable error codes -------------------------------------------------------------------


def test_error_codes_are_the_crates() -> None:
    assert ERROR_CODES == (
        "SESSION_NOT_FOUND",
        "SESSION_BUSY",
        "SESSION_PERSISTENCE_DISABLED",
        "SESSION_COMPACTION_DISABLED",
        "SESSION_NOT_RUNNING",
        "SESSION_STORE_ERROR",
        "AGENT_ERROR",
    )
    classes: list[type[SessionError]] = [
        SessionNotFound,
        SessionBusy,
        SessionPersistenceDisabled,
        SessionCompactionDisabled,
        SessionNotRunning,
        SessionStoreError,
        AgentError,
    ]
    assert tuple(c.code for c in classes) == ERROR_CODES
    assert set(SessionError.__subclasses__()) == set(classes)
    assert InvalidArgument.code == "INVALID_ARGUMENT"
    assert InvalidArgument.code not in ERROR_CODES


_EVERYTHING = SessionFilter()


class FlakyStore(MemoryStore):
    """A memory store whose calls fail (like a full disk) while ``broken`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    async def save(self, session: Session) -> None:
        if self.broken:
            await trio.lowlevel.checkpoint()
            raise OSError("disk full")
        await super().save(session)

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]:
        if self.broken:
            await trio.lowlevel.checkpoint()
            raise OSError("disk gone")
        return await super().list(filter)


async def test_every_raised_error_carries_its_stable_code() -> None:
    store = FlakyStore()
    builder = make_builder(turn_delay=0.0)
    seen: dict[str, SessionError] = {}

    def keep(err: SessionError) -> None:
        assert err.code in ERROR_CODES
        seen[err.code] = err

    async with open_persistent(store, builder=builder, max_sessions=2) as svc:
        s = (await svc.create_session(create_req("first"))).session_id
        failing: list[tuple[Callable[[], Awaitable[object]], type[SessionError]]] = [
            (lambda: svc.read(SessionId.from_int(0xDEAD)), SessionNotFound),
            (lambda: svc.interrupt(s), SessionNotRunning),
        ]
        for call, expected in failing:
            with pytest.raises(expected) as info:
                await call()
            keep(info.value)
        store.broken = True
        with pytest.raises(SessionStoreError) as store_info:
            await svc.create_session(create_req("unsaved"))
        keep(store_info.value)
        # The failed save names the session, which stays live (as in the seed).
        assert store_info.value.session_id == sid(2)
        assert str(sid(2)) in str(store_info.value)
        assert (await svc.read(sid(2))).state.message_count == 2
        with pytest.raises(SessionStoreError) as list_info:
            await svc.list()
        keep(list_info.value)
        store.broken = False
        with pytest.raises(AgentError) as full_info:
            await svc.create_session(create_req("third"))
        keep(full_info.value)
        async with trio.open_nursery() as nursery:
            host = spawn(nursery, lambda: svc.start_turn(s, turn_req("host", host_mode=True)))
            await settle()
            with pytest.raises(SessionBusy) as busy_info:
                await svc.start_turn(s, turn_req("second"))
            keep(busy_info.value)
            await svc.archive(s)
        keep(error_of(host))  # the host turn ends cancelled: an agent error
        await svc.archive(sid(2))
        await assert_healthy(svc)
    assert set(seen) == {
        "SESSION_NOT_FOUND",
        "SESSION_NOT_RUNNING",
        "SESSION_STORE_ERROR",
        "AGENT_ERROR",
        "SESSION_BUSY",
    }
