"""One ``--store KIND[:DIR]`` across the commands, the store-kind registry, the old spellings.

Every command that takes ``--store`` (``check``, ``sweep``, ``tour``,
``python -m meerkat_ref.adapter``, and ``python -m meerkat_ref.testing``)
reads it with ``store.parse_store``: a kind by name (ours, or one a package
registers under the ``meerkat_ref.stores`` entry point group) or by module
path, and the directory its stores are made in.  The old spellings
(``check --store DIR``, ``check --memory``, ``sweep --sqlite``, ``tour
--store FILE``) still work and say, on stderr, what to write instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import toy_stores

from meerkat_ref import adapter
from meerkat_ref._types import InvalidArgument
from meerkat_ref.cli import build_parser, main
from meerkat_ref.store import BUILTIN_KINDS, StoreOption, _kinds, parse_store, store_kind
from meerkat_ref.testing import STORE_CHECKS
from meerkat_ref.testing.__main__ import main as contract_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "kind", "path"), [
    ("memory", "memory", None),
    ("sqlite", "sqlite", None),
    ("sqlite:/tmp/runs", "sqlite", "/tmp/runs"),
    ("sqlite:/tmp/a:b", "sqlite", "/tmp/a:b"),  # the path is the rest, colons and all
    ("toy_stores:CORRECT", "toy_stores:CORRECT", None),
    ("toy_stores:CORRECT:/tmp/x", "toy_stores:CORRECT", "/tmp/x"),
])
def test_parse_store(text: str, kind: str, path: str | None) -> None:
    assert parse_store(text) == StoreOption(kind, path)
    assert str(parse_store(text)) == text


@pytest.mark.parametrize(("text", "says"), [
    ("", "--store is empty"),
    ("oracle", "unknown store 'oracle': use memory, sqlite"),
    ("sqlite:", "the path after ':' is empty"),
    ("nosuch.module:Kind", "cannot import 'nosuch.module'"),
    ("toy_stores:NOTHING", "has no 'NOTHING'"),
    ("toy_stores:BUGS", "neither a StoreKind nor a factory"),
])
def test_a_store_nothing_names_is_invalid_argument(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says) as info:
        parse_store(text)
    assert info.value.code == "INVALID_ARGUMENT"


def test_a_module_path_names_a_kind_or_a_bare_factory() -> None:
    kind = store_kind("toy_stores:CORRECT")
    assert kind is toy_stores.CORRECT and kind.spec == "toy_stores:CORRECT"
    bare = store_kind("toy_stores:ToyStore")  # a class is a factory; no `supports`: none
    assert bare.open is toy_stores.ToyStore and bare.supports == frozenset()
    assert bare.spec == "toy_stores:ToyStore"


def test_an_entry_point_names_a_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    registered = [EntryPoint("toy", "toy_stores:CORRECT", _kinds.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(_kinds, "entry_points", lambda group: registered)
    assert parse_store("toy:/tmp/x") == StoreOption("toy", "/tmp/x")
    assert store_kind("toy").open is toy_stores.CORRECT.open
    assert _kinds.kind_names() == ["memory", "sqlite", "toy"]


def test_unknown_capabilities_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown capabilities fast"):
        _kinds.StoreKind("x", toy_stores.ToyStore, frozenset({"fast"}))


def _store_options(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: action.metavar for name, sub in subs.choices.items()
            for action in sub._actions if "--store" in action.option_strings}


def test_every_command_says_store_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    assert _store_options(build_parser()) == {
        "check": "KIND[:DIR]", "tour": "KIND[:DIR]", "sweep": "KIND[:DIR]"}
    for run in (adapter.main, contract_main):
        with pytest.raises(SystemExit):
            run(["--help"])
        assert "--store KIND[:DIR]" in capsys.readouterr().out


_ONE = ["--scenario", "turn-save-vs-archive", "--bound", "0", "--json", "--jobs", "1"]


@pytest.mark.parametrize(("argv", "store", "said"), [
    (["--store", "memory"], "memory", None),
    (["--memory"], "memory", "meerkat-ref check: --memory is deprecated: use --store memory"),
    (["--store", "sqlite:{dir}"], "sqlite", None),
    (["--store", "{dir}"], "sqlite",
     "meerkat-ref check: --store DIR is deprecated: use --store sqlite:{dir}"),
    (["--store", "toy_stores:CORRECT"], "toy", None),  # the kind's own name
])
def test_check_runs_on_the_store_it_is_given(
    argv: list[str], store: str, said: str | None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    real = _kinds.StoreKind.explorer_open

    def spy(kind: _kinds.StoreKind, directory: Path) -> object:
        seen.append(kind.name)
        assert directory.parent == tmp_path or "{dir}" not in " ".join(argv)
        return real(kind, directory)

    monkeypatch.setattr(_kinds.StoreKind, "explorer_open", spy)
    args = [a.replace("{dir}", str(tmp_path)) for a in argv]
    assert main(["check", *args, *_ONE]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["results"][0]["violations"] == 0
    assert set(seen) == {store}
    deprecations = [line for line in err.splitlines() if "deprecated" in line]
    assert deprecations == ([] if said is None else [said.replace("{dir}", str(tmp_path))])


def test_sweep_takes_store_and_the_old_sqlite_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``sweep`` is given to explore on (its exploring is ``test_sweep.py``'s)."""
    from meerkat_ref.oracle import sweep

    given: list[tuple[str, str | None]] = []

    def run(args: argparse.Namespace, targets: sweep.Targets, *, store: str = "memory") -> int:
        for _, make in targets:
            target = make()
            given.append((target.store_kind, target._store_dir))
        return 0

    monkeypatch.setattr(sweep, "run", run)
    for argv, want, said in (
        ([], ("memory", None), False),
        (["--store", f"sqlite:{tmp_path}"], ("sqlite", str(tmp_path)), False),
        (["--store", "toy_stores:CORRECT"], ("toy", None), False),
        (["--sqlite"], ("sqlite", None), True),
    ):
        given.clear()
        assert main(["sweep", "--scope", "ci", *argv]) == 0
        assert given == [want]
        err = capsys.readouterr().err
        assert ("meerkat-ref sweep: --sqlite is deprecated: use --store sqlite" in err) == said


def test_tour_on_a_kind_in_a_directory_and_on_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tour", "--store", f"sqlite:{tmp_path}"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"store: sqlite in {tmp_path}\n") and err == ""
    assert (tmp_path / "sessions.sqlite").exists()
    assert main(["tour", "--store", "memory"]) == 0  # kept open across the restart
    out, _ = capsys.readouterr()
    assert "  listed s1: 4 messages" in out  # what survived the restart, as on SQLite
    old = tmp_path / "old.sqlite"
    assert main(["tour", "--store", str(old)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"store: SQLite at {old}\n")
    assert err == ("meerkat-ref tour: --store FILE is deprecated: use --store sqlite:DIR (the "
                   "store is DIR/sessions.sqlite)\n")


def test_the_adapter_serves_the_store_it_is_given(tmp_path: Path) -> None:
    lines = '{"id": "1", "cmd": "hello"}\n'
    for store, code in ((f"sqlite:{tmp_path}", 0), ("bogus", 2), ("sqlite:/no/such/dir", 2)):
        run = subprocess.run([sys.executable, "-m", "meerkat_ref.adapter", "--store", store],
                             input=lines, capture_output=True, text=True, cwd=ROOT, timeout=120,
                             check=False)
        assert run.returncode == code, run.stderr
        if code == 0:
            assert json.loads(run.stdout.splitlines()[0])["ok"]["store"] == "sqlite"
        else:
            assert run.stderr.startswith("meerkat_ref.adapter: ") and run.stdout == ""


def test_the_contract_command_reports_and_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_main(["--store", f"memory:{tmp_path}", "--check", "exists", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [r["check"] for r in report["results"]] == ["exists"]
    assert contract_main(["--store", "toy_stores:NO_LOCK", "--check", "owner-one-opener"]) == 1
    out = capsys.readouterr().out
    assert "FAILED   owner-one-opener" in out and out.rstrip().endswith("1 failed, 0 skipped")
    assert contract_main(["--store", "bogus"]) == 2
    assert capsys.readouterr().err.startswith("python -m meerkat_ref.testing: unknown store")
    assert contract_main([]) == 2
    assert "--store KIND[:DIR] is required" in capsys.readouterr().err
    assert contract_main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{c.name} " in listed for c in STORE_CHECKS)


def test_the_builtin_kinds_are_the_two_stores() -> None:
    assert list(BUILTIN_KINDS) == ["memory", "sqlite"]
    assert BUILTIN_KINDS["memory"].supports == frozenset()
    assert BUILTIN_KINDS["sqlite"].supports == frozenset(_kinds.CAPABILITIES)
