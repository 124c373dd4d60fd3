"""Where the repository is (this package imports nothing of ``meerkat_ref`` at import time)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
