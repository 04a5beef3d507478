"""``python -m nnlab ...``: the same as the ``nnlab`` command."""

import sys

from nnlab.cli import main

sys.exit(main())
