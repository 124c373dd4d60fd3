"""A damaged store file: each kind of damage, and what ``SqliteStore`` does ([STORE-DAMAGE]).

Each case takes a closed store of ``SESSIONS`` sessions (bodies about 1 KB,
so a few per page; each body carries a unique marker, so the test can find,
in the file's bytes, the page that holds every session), damages it, and
opens it again.  The expected outcome of each case is declared in ``CASES``
and checked against what the store does; ``docs/store-damage.md`` carries
the same table (a test keeps the two equal), plus the counts measured by
``python tests/test_store_damage.py``, which prints the table for this
machine.

The rules every case must keep: a file with sessions in it never opens as
an empty store; whatever cannot be read is refused or named, never silently
dropped; every session not on a damaged page stays listable and loadable;
``check()`` always completes; no error message quotes more than a few hundred
characters of the file.
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pytest
import trio

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import (
    AssistantMessage,
    InvalidArgument,
    Session,
    SessionId,
    Usage,
    UserMessage,
)
from meerkat_ref.store import SqliteStore
from meerkat_ref.store._sqlite import Salvage

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "store-damage.md"
SESSIONS = 120
MAX_MESSAGE = 600  # the longest error message any case may produce


def sid(n: int) -> SessionId:
    return SessionId.from_int(n + 1)


def marker(n: int) -> bytes:
    return f"marker-{n:04d}-".encode()


def make_session(n: int) -> Session:
    filler = " ".join(f"word{(n * 7 + k) % 97}" for k in range(140))
    return Session(
        id=sid(n),
        created_at=1_000 + n,
        updated_at=2_000 + n,
        messages=(
            UserMessage(f"{marker(n).decode()} {filler}"),
            AssistantMessage(f"echo {n}", Usage(n, 1)),
        ),
        metadata=MappingProxyType({"n": str(n)}),
        usage=Usage(n, 1),
        revision=2,
    )


@dataclass
class Pristine:
    """A closed, healthy store file and where each session lives in it."""

    path: Path
    page_size: int
    pages: int
    page_of: dict[int, int]  # session -> page number (0-based) of its body

    def on_pages(self, pages: set[int]) -> set[int]:
        return {n for n, page in self.page_of.items() if page in pages}


def build(directory: Path) -> Pristine:
    path = directory / "pristine.db"

    async def fill() -> None:
        async with SqliteStore(path) as store:
            for n in range(SESSIONS):
                await store.save(make_session(n))

    trio.run(fill)
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big") or 65536
    page_of: dict[int, int] = {}
    for n in range(SESSIONS):
        at = data.find(marker(n))
        assert at > 0 and data.find(marker(n), at + 1) == -1, "each marker once"
        page_of[n] = at // page_size
    return Pristine(path, page_size, len(data) // page_size, page_of)


@dataclass
class Seen:
    """What a store made of the damaged file."""

    refused: str | None = None
    listed: list[SessionId] = field(default_factory=list)
    loads_ok: set[int] = field(default_factory=set)
    loads_failed: dict[int, str] = field(default_factory=dict)
    checked: list[SessionId] = field(default_factory=list)
    corrupt: set[str] = field(default_factory=set)
    damage: list[str] = field(default_factory=list)


def inspect(path: Path) -> Seen:
    seen = Seen()

    async def main() -> None:
        try:
            store = SqliteStore(path)
        except SessionStoreError as exc:
            seen.refused = exc.message
            return
        async with store:
            seen.listed = [m.id for m in await store.list()]
            for n in range(SESSIONS):
                try:
                    loaded = await store.load(sid(n))
                except SessionStoreError as exc:
                    assert exc.session_id == sid(n)
                    seen.loads_failed[n] = exc.message
                else:
                    if loaded is not None:  # absent: a salvaged copy without it
                        assert loaded == make_session(n)
                        seen.loads_ok.add(n)
            seen.checked = await store.check()
            seen.corrupt = set(store.corrupt_ids)
            seen.damage = list(store.damage)

    trio.run(main)
    return seen


# --- the damage ------------------------------------------------------------------


def rng(name: str) -> random.Random:
    return random.Random(f"store-damage:{name}")


def truncate(fraction: float) -> Callable[[Pristine, Path], set[int]]:
    def damage(p: Pristine, path: Path) -> set[int]:
        keep = max(1, round(p.pages * fraction))
        with open(path, "r+b") as fh:
            fh.truncate(keep * p.page_size)
        return {n for n, page in p.page_of.items() if page >= keep}

    return damage


def one_page_short(p: Pristine, path: Path) -> set[int]:
    with open(path, "r+b") as fh:
        fh.truncate((p.pages - 1) * p.page_size)
    return p.on_pages({p.pages - 1})


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def random_page(p: Pristine, name: str, page: int) -> bytes:
    noise = bytearray(rng(name).randbytes(p.page_size))
    noise[0] = 0xFF  # never a valid b-tree page type: SQLite must notice
    del page
    return bytes(noise)


def table_page(p: Pristine, path: Path) -> set[int]:
    pages = sorted(set(p.page_of.values()))
    page = pages[len(pages) // 2]
    overwrite(path, page * p.page_size, random_page(p, "table", page))
    return p.on_pages({page})


def index_pages(p: Pristine) -> list[int]:
    """Pages holding session ids but no body: the indexes' leaves."""
    data = p.path.read_bytes()
    out = []
    for page in range(1, p.pages):
        chunk = data[page * p.page_size : (page + 1) * p.page_size]
        if b"marker-" not in chunk and str(sid(0))[:24].encode() in chunk:
            out.append(page)
    return out


def index_page(p: Pristine, path: Path) -> set[int]:
    for page in index_pages(p):
        overwrite(path, page * p.page_size, random_page(p, "index", page))
    return set()  # every row is intact: nothing may be lost


def body_bytes(p: Pristine, path: Path) -> set[int]:
    n = SESSIONS // 3
    at = p.path.read_bytes().find(marker(n))
    overwrite(path, at + 40, rng("body").randbytes(16))
    return {n}


def listing_column(p: Pristine, path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE sessions SET updated_at = 'yesterday' WHERE id = ?", (str(sid(7)),))
    conn.close()
    return {7}


def header(p: Pristine, path: Path) -> set[int]:
    overwrite(path, 0, rng("header").randbytes(100))
    return set(range(SESSIONS))


def dropped_table(p: Pristine, path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE sessions")
    conn.close()
    return set(range(SESSIONS))


def zero_bytes(p: Pristine, path: Path) -> set[int]:
    path.write_bytes(b"")
    return set(range(SESSIONS))


def wal_without_db(p: Pristine, path: Path) -> set[int]:
    Path(f"{path}-wal").write_bytes(path.read_bytes()[:4096])  # any content
    path.unlink()
    return set(range(SESSIONS))


def foreign_database(p: Pristine, path: Path) -> set[int]:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    return set()


@dataclass(frozen=True)
class Case:
    name: str
    damage: str  # what is done to the file
    outcome: str  # what the store does (checked by ``verify``)
    apply: Callable[[Pristine, Path], set[int]]  # returns the sessions it ruins
    refused: str | None = None  # the refusal must contain this, if refused
    kind: str = "pages"  # pages | index | row
    salvage: bool = False  # SqliteStore.salvage must recover every intact session


CASES = [
    Case(
        "0 bytes",
        "the file is truncated to nothing",
        "refused: the file is empty, and a new store is only made where no file exists",
        zero_bytes,
        refused="empty",
    ),
    Case(
        "header",
        "the first 100 bytes are random",
        "refused: not an SQLite database (its first bytes are quoted, capped)",
        header,
        refused="not an SQLite database",
    ),
    Case(
        "dropped table",
        "`DROP TABLE sessions`",
        "refused: no sessions table; it would open as empty",
        dropped_table,
        refused="no sessions table",
    ),
    Case(
        "truncated to 1 page",
        "only the first page is left",
        "refused: truncated (the header's page count against the file's); `salvage` "
        "recovers nothing and names no one (the table and its indexes are gone)",
        truncate(0.0),
        refused="it is truncated",
        salvage=True,
    ),
    Case(
        "truncated to 1/2",
        "the second half of the pages is cut off",
        "refused: truncated; `SqliteStore.salvage` copies every session on the pages left "
        "into a new store and names the lost ones an index still lists",
        truncate(0.5),
        refused="it is truncated",
        salvage=True,
    ),
    Case(
        "truncated to 3/4",
        "the last quarter of the pages is cut off",
        "as for 1/2",
        truncate(0.75),
        refused="it is truncated",
        salvage=True,
    ),
    Case(
        "one page short",
        "the last page is cut off",
        "as for 1/2",
        one_page_short,
        refused="it is truncated",
        salvage=True,
    ),
    Case(
        "table page",
        "one page of the table (a leaf holding some sessions) is 4 KB of random bytes",
        "opens; the sessions on that page are named by `check()` (from the indexes), "
        "skipped by `list`, fail `load` naming themselves; all others list and load; "
        "`salvage` copies all the others",
        table_page,
        salvage=True,
    ),
    Case(
        "index pages",
        "every leaf page of both indexes is random bytes",
        "opens; nothing is lost: `list` walks the table, `load` scans it; `check()` names "
        "no session and reports the damage (SQLite's `quick_check`) in `damage`",
        index_page,
        kind="index",
        salvage=True,
    ),
    Case(
        "row body",
        "16 random bytes inside one session's body",
        "opens; that session fails `load` with a short error naming it and is named by "
        "`check()`; it is still listed (its listing columns are intact); all others load; "
        "`salvage` copies all the others and names it",
        body_bytes,
        kind="row",
        salvage=True,
    ),
    Case(
        "listing columns",
        "one row's `updated_at` is text",
        "opens; that row is skipped by `list` (logged, in `corrupt_ids`) and named by "
        "`check()`; it still loads; all others list and load",
        listing_column,
        kind="row",
    ),
    Case(
        "WAL without its database",
        "the database file is gone, its `-wal` file is not",
        "refused: the log holds committed sessions; never a new empty store beside it",
        wal_without_db,
        refused="write-ahead log",
    ),
    Case(
        "another database",
        "an SQLite file with another schema (`user_version` 0, no sessions table)",
        "refused: not a session store",
        foreign_database,
        refused="not a session store",
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build(tmp_path_factory.mktemp("damage"))


def damaged_copy(p: Pristine, case: Case, directory: Path) -> tuple[Path, set[int]]:
    path = directory / "store.db"
    shutil.copyfile(p.path, path)
    return path, case.apply(p, path)


def verify(case: Case, seen: Seen, ruined: set[int]) -> None:
    everyone = set(range(SESSIONS))
    for text in [seen.refused or "", *seen.loads_failed.values(), *seen.damage]:
        assert len(text) <= MAX_MESSAGE, f"{case.name}: message of {len(text)} characters"
    if case.refused is not None:
        assert seen.refused is not None, f"{case.name}: opened, expected a refusal"
        assert case.refused in seen.refused, seen.refused
        return
    assert seen.refused is None, f"{case.name}: refused: {seen.refused}"
    intact = everyone - ruined
    if case.kind == "row":
        (bad,) = ruined
        assert seen.checked == [sid(bad)]
        assert seen.loads_ok >= intact
        if case.name == "row body":
            assert set(seen.loads_failed) == {bad}
            assert str(sid(bad)) in seen.loads_failed[bad]
            assert set(seen.listed) == everyone_ids()
        else:
            assert set(seen.listed) == {sid(n) for n in intact}
            assert str(sid(bad)) in seen.corrupt
        return
    # Page damage: exactly the sessions on good pages list and load, in order.
    assert seen.listed == [sid(n) for n in sorted(intact, reverse=True)]
    assert seen.loads_ok == intact
    assert set(seen.loads_failed) == ruined
    assert set(seen.checked) <= {sid(n) for n in ruined}
    if case.kind == "index":
        assert seen.checked == [] and seen.damage, "index damage must be reported"
    else:
        assert seen.damage, "unreadable pages must be reported"
        unnamed = len(ruined) - len(seen.checked)
        if case.name == "table page":
            assert unnamed == 0, "the indexes are intact: every lost session is named"
        for n in ruined:
            assert str(sid(n)) in seen.loads_failed[n]


def everyone_ids() -> set[SessionId]:
    return {sid(n) for n in range(SESSIONS)}


def verify_salvage(p: Pristine, path: Path, ruined: set[int], directory: Path) -> Salvage:
    target = directory / "salvaged.db"
    result = trio.run(SqliteStore.salvage, path, target)
    intact = set(range(SESSIONS)) - ruined
    assert set(result.recovered) == {sid(n) for n in intact}
    assert {SessionId.parse(label) for label in result.lost} <= {sid(n) for n in ruined}
    assert all(len(problem) <= MAX_MESSAGE for problem in result.problems)
    if ruined:
        assert result.problems or result.lost, "a loss must be reported"
    seen = inspect(target)
    assert seen.listed == [sid(n) for n in sorted(intact, reverse=True)]
    assert seen.checked == [] and seen.loads_ok == intact
    return result


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damage(case: Case, pristine: Pristine, tmp_path: Path) -> None:
    path, ruined = damaged_copy(pristine, case, tmp_path)
    verify(case, inspect(path), ruined)
    if case.salvage:
        result = verify_salvage(pristine, path, ruined, tmp_path)
        if case.kind == "row":
            assert result.lost == [str(sid(n)) for n in ruined]
        if case.name == "table page":
            assert len(result.lost) == len(ruined)  # the indexes name every one


def test_salvage_refuses_an_existing_target_and_never_writes_the_source(
    pristine: Pristine, tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    shutil.copyfile(pristine.path, source)
    before = source.read_bytes()
    with pytest.raises(InvalidArgument, match="exists"):
        trio.run(SqliteStore.salvage, source, pristine.path)
    result = trio.run(SqliteStore.salvage, source, tmp_path / "copy.db")
    assert len(result.recovered) == SESSIONS and result.lost == [] and result.problems == []
    assert source.read_bytes() == before


def test_the_healthy_file_is_what_the_cases_assume(pristine: Pristine) -> None:
    seen = inspect(pristine.path)
    assert seen.refused is None and seen.checked == [] and seen.damage == []
    assert len(seen.listed) == SESSIONS and len(seen.loads_ok) == SESSIONS
    assert len(set(pristine.page_of.values())) >= 20  # many pages: the cases mean something
    assert index_pages(pristine)


def test_huge_damaged_values_are_never_echoed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Megabytes of garbage in a row give short messages, in errors and in the log."""
    path = tmp_path / "s.db"

    async def fill() -> None:
        async with SqliteStore(path) as store:
            await store.save(make_session(1))
            await store.save(make_session(2))

    trio.run(fill)
    conn = sqlite3.connect(path)
    with conn:
        garbage = "\u00ff" * 5_000_000  # 10 MB of UTF-8
        conn.execute("UPDATE sessions SET body = ? WHERE id = ?", (garbage, str(sid(1))))
        conn.execute(
            "INSERT INTO sessions (id, created_at, updated_at, message_count, total_tokens, "
            "metadata, body) VALUES (?, 1, 1, 0, 0, ?, ?)",
            ("x" * 1_000_000, "{" * 1_000_000, garbage),
        )
    conn.close()

    async def main() -> None:
        async with SqliteStore(path) as store:
            with pytest.raises(SessionStoreError) as info:
                await store.load(sid(1))
            assert len(info.value.message) <= MAX_MESSAGE
            assert [m.id for m in await store.list()] == [sid(2), sid(1)]
            assert await store.check() == [sid(1)]
            assert all(len(label) <= MAX_MESSAGE for label in store.corrupt_ids)

    trio.run(main)
    assert caplog.records and all(len(r.getMessage()) <= 2 * MAX_MESSAGE for r in caplog.records)


# --- the table in docs/store-damage.md ----------------------------------------------------

_BEGIN, _END = "<!-- BEGIN damage-matrix -->", "<!-- END damage-matrix -->"


def declared_table() -> str:
    lines = ["| case | damage | outcome |", "| --- | --- | --- |"]
    lines += [f"| {c.name} | {c.damage} | {c.outcome} |" for c in CASES]
    return "\n".join(lines)


def measured_table(p: Pristine, directory: Path) -> str:
    lines = [
        f"| case | sessions listed (of {SESSIONS}) | loads failing | named by `check()` | "
        "`damage` entries | `salvage`: recovered, named lost | refusal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        where = directory / re.sub(r"\W+", "-", case.name)
        where.mkdir()
        path, _ = damaged_copy(p, case, where)
        seen = inspect(path)
        salvaged = "—"
        if case.salvage:
            result = trio.run(SqliteStore.salvage, path, where / "salvaged.db")
            salvaged = f"{len(result.recovered)}, {len(result.lost)}"
        if seen.refused is not None:
            refusal = seen.refused.replace(str(path), "store.db").split(": ", 1)[-1]
            refusal = refusal.replace("|", "\\|")[:110]
            lines.append(f"| {case.name} | — | — | — | — | {salvaged} | {refusal}… |")
        else:
            lines.append(
                f"| {case.name} | {len(seen.listed)} | {len(seen.loads_failed)} | "
                f"{len(seen.checked)} | {len(seen.damage)} | {salvaged} | — |"
            )
    return "\n".join(lines)


def test_the_doc_declares_the_same_outcomes() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    assert text[start:end].strip() == declared_table(), (
        "docs/store-damage.md is out of date: paste the output of "
        "`python tests/test_store_damage.py --declared` between its markers"
    )


if __name__ == "__main__":
    import tempfile

    if "--declared" in sys.argv:
        print(declared_table())
    else:
        import sqlite3 as _sqlite3

        with tempfile.TemporaryDirectory() as tmp:
            p = build(Path(tmp))
            print(f"SQLite {_sqlite3.sqlite_version}, {p.pages} pages of {p.page_size} B\n")
            print(measured_table(p, Path(tmp)))
