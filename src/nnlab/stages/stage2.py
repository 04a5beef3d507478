"""Stage 2 -- two stacked Linear layers (1 -> 4 -> 1), no activation.

The handout's two-layer linear network on a fresh draw of the Stage 1 data, lr
0.05, 200 full-batch epochs.  Measured on top:

* a finite-difference check of ``lin1.backward`` and ``lin2.backward`` on a tiny
  batch of 3 points (relative error per gradient);
* the end-to-end map collapsed to one line, ``w = W2 @ W1`` and ``b = W2 @ b1 + b2``,
  against the network's own predictions and the least-squares line that Stage 1's
  estimator converges to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import make_line
from nnlab.gradcheck import numerical_gradient, rel_error
from nnlab.layers import Linear, Sequential
from nnlab.losses import MSELoss
from nnlab.optim import SGD
from nnlab.stages.common import Result, config_dict, fmt, least_squares_line
from nnlab.train import fit
from nnlab.utils import seed_everything

TITLE = "Stage 2 - two-layer linear network"


@dataclass
class Config:
    """Stage 2 settings (the handout's values by default)."""

    hidden: int = 4
    lr: float = 0.05
    epochs: int = 200
    n: int = 200
    seed: int = 42
    check_rows: tuple = (0, 100, 199)
    fd_step: float = 1e-6

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "epochs": 100})


def finite_difference_check(net: Sequential, X, Y, h: float = 1e-6) -> dict:
    """Relative error of every backward gradient of ``net`` under MSE against central differences."""
    loss = MSELoss()
    _, dyhat = loss(net.forward(X), Y)
    dh = net[1].backward(dyhat)
    dx = net[0].backward(dh)

    def objective():
        return loss(net.forward(X), Y)[0]

    errors = {
        "lin1.W": rel_error(net[0].dW, numerical_gradient(objective, net[0].W, h)),
        "lin1.b": rel_error(net[0].db, numerical_gradient(objective, net[0].b, h)),
        "lin2.W": rel_error(net[1].dW, numerical_gradient(objective, net[1].W, h)),
        "lin2.b": rel_error(net[1].db, numerical_gradient(objective, net[1].b, h)),
        "input x": rel_error(dx, numerical_gradient(objective, X, h)),
    }
    # The scale of a real slip, for comparison: lin1.W's gradient with the MSE's factor 2 dropped.
    planted = rel_error(0.5 * net[0].dW, numerical_gradient(objective, net[0].W, h))
    return {"errors": errors, "max_error": max(errors.values()), "h": h, "planted_slip_error": planted}


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 2; write its figures into ``out_dir``; return its :class:`Result`."""
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    lin1 = Linear(in_dim=1, out_dim=c.hidden, name="lin1")
    lin2 = Linear(in_dim=c.hidden, out_dim=1, name="lin2")
    net = Sequential(lin1, lin2)
    x, y = make_line(c.n)
    X, Y = x.reshape(-1, 1), y.reshape(-1, 1)

    rows = [r for r in c.check_rows if r < c.n]
    check = finite_difference_check(net, X[rows].copy(), Y[rows], c.fd_step)

    hist = fit(net, MSELoss(), SGD(net.parameters(), lr=c.lr), X, Y, epochs=c.epochs, name="stage 2")
    w_collapsed = float((lin2.W @ lin1.W)[0, 0])
    b_collapsed = float((lin2.W @ lin1.b + lin2.b)[0])
    yhat = net.forward(X).ravel()
    collapse_gap = float(np.max(np.abs(yhat - (w_collapsed * x + b_collapsed))))
    w_ols, b_ols, mse_ols = least_squares_line(x, y)

    figs = {
        "loss": plots.curves(out_dir / "stage2_loss.png", {"MSE": hist.step_loss}, "Stage 2: two-layer linear, MSE",
                             xlabel="epoch", ylabel="MSE", logy=True, hline=(mse_ols, "least-squares optimum")),
        "fit": plots.fit(out_dir / "stage2_fit.png", x, y,
                         {f"network = {w_collapsed:.3f} x {b_collapsed:+.3f}": yhat,
                          f"least squares = {w_ols:.3f} x {b_ols:+.3f}": w_ols * x + b_ols},
                         f"Stage 2: the 1-{c.hidden}-1 linear net is one line", truth=(x, 2.5 * x - 0.7)),
    }
    rises = np.diff(hist.step_loss)
    metrics = {
        "loss_first": hist.step_loss[0], "loss_final": hist.step_loss[-1], "mse_ols": mse_ols,
        "epochs_loss_rose": int(np.sum(rises > 0)), "largest_rise": float(max(rises.max(), 0.0)),
        "parameters": sum(p.value.size for p in net.parameters()),
        "finite_difference": check, "check_rows": rows,
        "W1": lin1.W.ravel(), "b1": lin1.b, "W2": lin2.W.ravel(), "b2": lin2.b,
        "w_collapsed": w_collapsed, "b_collapsed": b_collapsed, "collapse_max_abs_gap": collapse_gap,
        "w_ols": w_ols, "b_ols": b_ols,
    }
    summary = [
        ("MSE first -> last epoch", f"{fmt(hist.step_loss[0])} -> {fmt(hist.step_loss[-1])}"),
        ("finite-difference max rel. error (3 points)", f"{check['max_error']:.2e}"),
        ("collapsed line w, b", f"{fmt(w_collapsed)}, {fmt(b_collapsed)}"),
        ("least-squares line w, b", f"{fmt(w_ols)}, {fmt(b_ols)}"),
        ("max |net(x) - (w x + b)|", f"{collapse_gap:.1e}"),
    ]
    return Result("2", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=hist.diverged, messages=[hist.message] if hist.diverged else [])
