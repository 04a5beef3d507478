"""``python -m nnlab ...``: the same as the ``nnlab`` command."""

import sys

from nnlab.cli import main

if __name__ == "__main__":  # (the module table of the design doc imports every module: no run on import)
    sys.exit(main())
