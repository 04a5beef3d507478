# %%
# Set-up shared by every notebook (notebooks/sources/_setup.py): the library, NumPy, and `show`,
# which displays a figure that one of nnlab.plots' helpers has written to a PNG file.
import os
from pathlib import Path

import numpy as np
from IPython.display import Image, display

import nnlab
from nnlab import plots

# CI runs every notebook with NNLAB_QUICK=1: the same cells on smaller budgets, in seconds.
QUICK = os.environ.get("NNLAB_QUICK") == "1"
FIGURES = Path("runs/notebooks")


def show(path):
    """Display the PNG at ``path`` in the notebook."""
    display(Image(filename=str(path)))
