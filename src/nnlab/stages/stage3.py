"""Stage 3 -- a one-hidden-layer MLP on a sine, ReLU against tanh, short against long training.

The handout's set-up: 400 points of ``sin(2 pi x) + 0.1 N(0, 1)`` on [-1, 1], an
``MLP(1, 32, 1)``, plain full-batch gradient descent with lr 0.005.  Both
activations start from the *same* initial weights and see the same data; each is
trained for the long budget (15,000 epochs) with a snapshot at the short one
(1,500), so the comparison isolates the activation and the training time.

Bias and variance are measured, not guessed: the error against the noisy
training targets, and the error against the noise-free sine on a fine grid (the
part that generalises).  The noise floor is ``noise**2 = 0.01``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import make_sine
from nnlab.losses import MSELoss
from nnlab.models import MLP
from nnlab.optim import SGD
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.train import fit
from nnlab.utils import seed_everything

TITLE = "Stage 3 - nonlinear MLP on a sine"


@dataclass
class Config:
    """Stage 3 settings (the handout's values by default)."""

    n: int = 400
    noise: float = 0.1
    hidden: int = 32
    lr: float = 0.005
    epochs: int = 1500
    long_epochs: int = 15000
    nonlins: tuple = ("relu", "tanh")
    seed: int = 42

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "epochs": 300, "long_epochs": 1500})


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 3; write its figures into ``out_dir``; return its :class:`Result`."""
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    x, y = make_sine(c.n, c.noise)
    X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
    grid = np.linspace(-1, 1, 1001).reshape(-1, 1)
    clean = np.sin(2 * math.pi * grid)

    runs, curves, fits_short, fits_long, messages = {}, {}, {}, {}, []
    diverged = False
    for nonlin in c.nonlins:
        model = MLP(1, c.hidden, 1, nonlin=nonlin, rng=np.random.default_rng(c.seed))
        snapshot = {}

        def snap(epoch, model=model, snapshot=snapshot):
            if epoch + 1 == c.epochs:
                snapshot["train_pred"] = model.predict(X).ravel()
                snapshot["grid_pred"] = model.predict(grid)
            return {}

        hist = fit(model, MSELoss(), SGD(model.parameters(), lr=c.lr), X, Y, epochs=max(c.epochs, c.long_epochs),
                   evaluate=snap, progress=progress, name=f"stage 3 ({nonlin})")
        diverged |= hist.diverged
        if hist.diverged:
            messages.append(hist.message)
        train_long = model.predict(X).ravel()
        grid_long = model.predict(grid)
        runs[nonlin] = {
            "train_mse_short": hist.step_loss[c.epochs - 1] if len(hist.step_loss) >= c.epochs else float("nan"),
            "train_mse_long": float(np.mean((train_long - y) ** 2)),
            "truth_mse_short": float(np.mean((snapshot["grid_pred"] - clean) ** 2)) if snapshot else float("nan"),
            "truth_mse_long": float(np.mean((grid_long - clean) ** 2)),
            "loss_first": hist.step_loss[0],
        }
        curves[nonlin] = hist.step_loss
        if snapshot:
            fits_short[nonlin] = snapshot["train_pred"]
        fits_long[nonlin] = train_long

    truth = (x, np.sin(2 * math.pi * x))
    figs = {
        "loss": plots.curves(out_dir / "stage3_loss.png", {f"{k} MLP": v for k, v in curves.items()},
                             f"Stage 3: MSE over {c.long_epochs} epochs (lr {c.lr:g})", xlabel="epoch",
                             ylabel="MSE", logy=True, hline=(c.noise**2, "noise floor")),
        "fit_short": plots.fit(out_dir / "stage3_fit_short.png", x, y, {f"{k}, {c.epochs} epochs": v
                               for k, v in fits_short.items()}, f"Stage 3: predictions after {c.epochs} epochs",
                               truth=truth),
        "fit_long": plots.fit(out_dir / "stage3_fit_long.png", x, y, {f"{k}, {c.long_epochs} epochs": v
                              for k, v in fits_long.items()}, f"Stage 3: predictions after {c.long_epochs} epochs",
                              truth=truth),
    }
    slope, intercept = np.polyfit(grid.ravel(), clean.ravel(), 1)
    line_mse = float(np.mean((slope * grid + intercept - clean) ** 2))  # the best any straight line can do
    metrics = {"runs": runs, "noise_floor": c.noise**2, "line_mse": line_mse}
    summary = []
    for k, r in runs.items():
        summary.append((f"{k}: train MSE {c.epochs} / {c.long_epochs} ep",
                        f"{fmt(r['train_mse_short'])} / {fmt(r['train_mse_long'])}"))
        summary.append((f"{k}: MSE vs true sine {c.epochs} / {c.long_epochs} ep",
                        f"{fmt(r['truth_mse_short'])} / {fmt(r['truth_mse_long'])}"))
    return Result("3", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=diverged, messages=messages)
