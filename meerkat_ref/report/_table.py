"""Text tables whose columns line up, whatever is in the cells.

Why not ``str.ljust``: it counts code points, so a column that holds a wide
character (CJK), an accent written as a combining mark, or a newline from a
port's message falls out of line.  Here a cell's width is its width on a
terminal (East Asian wide and full-width characters count 2, combining marks
0), and control characters are shown escaped so a cell stays on its line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (``text`` holds no control characters)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf":
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def cell_text(value: object) -> str:
    """``value`` as one line: tabs and newlines become spaces, other controls ``\\xNN``."""
    out = []
    for ch in str(value):
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - display_width(text))
    return gap + text if right else text + gap


def aligned_table(rows: Sequence[Sequence[object]], numeric_columns: Collection[int] = ()) -> str:
    """``rows[0]`` is the header; a rule of dashes goes under it.

    Columns are two spaces apart; those in ``numeric_columns`` (indices) are
    right-aligned, the others left-aligned.  A short row is padded with
    empty cells.  Lines carry no trailing spaces.
    """
    if not rows:
        return ""
    count = max(len(r) for r in rows)
    cells = [[cell_text(c) for c in r] + [""] * (count - len(r)) for r in rows]
    widths = [max(display_width(r[i]) for r in cells) for i in range(count)]
    lines = [
        "  ".join(_pad(c, widths[i], i in numeric_columns) for i, c in enumerate(r)).rstrip()
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
