"""Safe-by-construction HTML: every string is escaped unless it is already ``Markup``.

Why: a trace may come from a port, and its messages, texts and even its
task names are hostile text.  Building pages only through ``el`` means no
code path can put a trace string into the page unescaped; a forgotten
``html.escape`` cannot happen because there is nothing to forget.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

AttrValue = str | int | bool | None


class Markup(str):
    """Text that is already HTML (produced by ``el``/``join`` or written here as a constant)."""

    __slots__ = ()


Child = str | int | Markup | None


def escape(value: Child) -> Markup:
    """``value`` as HTML: Markup passes through; anything else is escaped; None is nothing."""
    if value is None:
        return Markup("")
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(children: Iterable[Child], sep: str = "") -> Markup:
    return Markup(escape(sep).join(escape(c) for c in children))


def el(tag: str, attrs: Mapping[str, AttrValue] | None = None, *children: Child) -> Markup:
    """``<tag attrs>children</tag>``; ``True`` gives a bare attribute, ``None``/``False`` none.

    ``tag`` and the attribute names are this package's constants, never trace text.
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(name)
        else:
            parts.append(f'{name}="{html.escape(str(value), quote=True)}"')
    return Markup(f"<{' '.join(parts)}>{join(children)}</{tag}>")
