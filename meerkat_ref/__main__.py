"""``python -m meerkat_ref`` is ``meerkat-ref``."""

import sys

from .cli import main

sys.exit(main())
