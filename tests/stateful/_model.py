"""The pure model's names, for the stateful tests.

At run time the model is ``meerkat_ref.models`` (a setuptools package-dir
mapping of the repository's ``models/``); mypy, reading the source tree, can
only see it as the top-level package ``models``.  Both are the same files.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.sessions import *  # noqa: F403
else:
    from meerkat_ref.models.sessions import *  # noqa: F403
