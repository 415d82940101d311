"""``python -m skmm.cli``: the same as the ``skmm`` command."""

import sys

from .main import main

sys.exit(main())
