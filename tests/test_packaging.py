"""The package installs what the checkout has: every subpackage, the model, the spec."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_for_installation() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "meerkat_ref").rglob("__init__.py")
    }
    assert found - listed == set(), "subpackages a wheel would leave out"
    assert {"meerkat_ref.models", "meerkat_ref.spec"} <= listed
    dirs = config["tool"]["setuptools"]["package-dir"]
    assert dirs["meerkat_ref.models"] == "models" and dirs["meerkat_ref.spec"] == "spec"
    assert listed - found - {"meerkat_ref.models", "meerkat_ref.spec"} == set(), (
        "listed packages that do not exist"
    )


def test_readme_gives_the_test_command_ci_runs() -> None:
    """README's second command is exactly the last line of ``.ci/run``: nothing weaker."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ci.startswith("python3 -m venv .venv") and "pytest" in ci
    assert ci in readme.splitlines()


def test_contributing_names_every_module() -> None:
    """CONTRIBUTING's floor table is where a newcomer finds each module's one job."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    unnamed = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "meerkat_ref").rglob("*.py")
        if path.name != "__init__.py" and path.name not in text
    )
    assert unnamed == []


@pytest.mark.parametrize("ci_env", ["", "true"])
def test_the_ci_profile_draws_the_same_examples_every_run(ci_env: str) -> None:
    """README: a red CI is a change in the code, never the luck of a draw.

    Checked with and without ``CI`` in the environment: when it is set,
    Hypothesis loads a derandomized profile of its own before ours are
    registered, and ``deep`` must not inherit it.
    """
    probe = (
        "import sys; sys.path.insert(0, 'tests'); import conftest\n"
        "from hypothesis import settings\n"
        "ci, deep = settings.get_profile('ci'), settings.get_profile('deep')\n"
        "print(ci.derandomize, ci.database is None, deep.derandomize, deep.database is None)"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci_env:
        env["CI"] = ci_env
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    ).stdout.split()
    assert out == ["True", "True", "False", "False"]
