"""The README's Python example runs and prints what the README says it prints.

Why: a reader copies it first; it used to print a raw dataclass repr.  The
ids are random, so they are compared as "some UUID".
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_the_python_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"```python\n.*?```\n\nprints \(the id is random\):\n\n```\n(.*?)```",
                      text, re.S)
    assert code is not None and shown is not None
    # The timeout is a guard against a hang only: the example takes 0.2 s of CPU, but
    # took 5 s on a machine at load 12.
    run = subprocess.run([sys.executable, "-c", code.group(1)], cwd=tmp_path, text=True,
                         capture_output=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert not re.search(r"\w+\(\w+=", run.stdout), "a dataclass repr"
    assert UUID.sub("ID", run.stdout) == UUID.sub("ID", shown.group(1))


def test_the_store_contract_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """README, "Checking your own store": the example runs and prints what is shown."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Checking your own store"):]
    found = re.search(r"```python\n(.*?)```\n\nprints \(`tests/test_readme.py` runs it\):\n\n"
                      r"```\n(.*?)```", section, re.S)
    assert found is not None
    run = subprocess.run([sys.executable, "-c", found.group(1)], cwd=tmp_path, text=True,
                         capture_output=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == found.group(2)


def test_the_store_contract_section_counts_what_there_is() -> None:
    sys.path.insert(0, str(README.parent / "tests"))
    from toy_stores import BUGS

    from meerkat_ref.store import BUILTIN_KINDS
    from meerkat_ref.testing import STORE_CHECKS

    text = README.read_text(encoding="utf-8")
    section = " ".join(text[text.index("### Checking your own store"):].split())
    memory = BUILTIN_KINDS["memory"].supports
    skipped = sum(1 for c in STORE_CHECKS if not c.needs <= memory)
    assert f"runs each of the {len(STORE_CHECKS)} checks" in section
    assert f"memory skips the {skipped} checks" in section
    assert f"({len(BUGS)} bugs;" in section
