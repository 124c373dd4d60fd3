"""The pure model (``models/``), imported once for the whole package.

Installed, ``models/`` is ``meerkat_ref.models`` (a setuptools package-dir
mapping, so no generic top-level ``models`` lands in site-packages); mypy,
reading the source tree, sees the same files as the top-level package
``models``.  Import the model from here instead of repeating that switch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models import concurrent, examples
    from models import sessions as model
    from models.sessions import *  # noqa: F403
else:
    from .models import concurrent, examples
    from .models import sessions as model
    from .models.sessions import *  # noqa: F403

__all__ = ["concurrent", "examples", "model"]
