"""Stage 1 -- a line fitted by gradient descent, and the questions it raises.

The handout's fully worked example: ``yhat = w x + b`` on 200 noisy points of
``y = 2.5 x - 0.7``, MSE loss, plain gradient descent with lr 0.05 for 800 steps.
Here the line is an nnlab ``Linear(1, 1)`` trained by :func:`nnlab.train.fit`,
initialised from ``np.random.randn()`` in the handout's order, so the numbers are
the handout's.  Measured on top:

* the learned ``w, b`` against the truth and the least-squares optimum;
* a learning-rate sweep that finds where training diverges, against the bound
  ``lr < 2 / lambda_max`` from the loss's curvature (its Hessian);
* the "x all near zero" experiment: which parameter learns, and why;
* the noise floor from the noise actually drawn: its mean square, and the part of
  it that the least-squares line absorbs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import make_line
from nnlab.layers import Linear
from nnlab.losses import MSELoss
from nnlab.optim import SGD
from nnlab.parallel import pmap
from nnlab.stages.common import Result, config_dict, fmt, least_squares_line
from nnlab.train import fit
from nnlab.utils import seed_everything

TITLE = "Stage 1 - linear estimator trained by gradient descent"


@dataclass
class Config:
    """Stage 1 settings (the handout's values by default)."""

    n: int = 200
    true_a: float = 2.5
    true_b: float = -0.7
    noise: float = 0.25
    lr: float = 0.05
    epochs: int = 800
    seed: int = 42
    sweep_lrs: tuple = (0.01, 0.05, 0.2, 0.5, 0.7, 0.74, 0.75, 0.8)
    near_zero_scale: float = 0.005
    bisect_iters: int = 20

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "epochs": 200, "sweep_lrs": (0.05, 0.5, 0.8), "bisect_iters": 8})


def _train_line(x, y, w0, b0, lr, epochs):
    """Fit ``Linear(1, 1)`` from ``(w0, b0)``; return the layer, its history, and w/b per step."""
    lin = Linear(1, 1)
    lin.W[0, 0], lin.b[0] = w0, b0
    path_w, path_b = [w0], [b0]

    def record(_epoch):
        path_w.append(float(lin.W[0, 0]))
        path_b.append(float(lin.b[0]))
        return {}

    hist = fit(lin, MSELoss(), SGD(lin.parameters(), lr=lr), x.reshape(-1, 1), y.reshape(-1, 1),
               epochs=epochs, evaluate=record, name=f"stage 1 (lr {lr})")
    return lin, hist, np.array(path_w), np.array(path_b)


def curvature(x) -> dict:
    """Hessian of ``mean((w x + b - y)^2)`` in (w, b), its eigenvalues, and the GD stability bound.

    ``H = 2 [[mean x^2, mean x], [mean x, 1]]`` does not depend on ``y`` or the
    parameters; gradient descent converges iff ``lr < 2 / lambda_max(H)``.
    """
    H = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    eig = np.linalg.eigvalsh(H)
    return {"hessian": H, "eigenvalues": eig, "lr_critical": 2 / eig.max()}


def _diverges(x, y, w0, b0, lr, epochs) -> bool:
    _, hist, _, _ = _train_line(x, y, w0, b0, lr, epochs)
    return hist.diverged or hist.step_loss[-1] > hist.step_loss[0]


def _sweep_point(x, y, w0, b0, lr, epochs) -> dict:
    """One learning rate of the sweep: the loss curve and whether it diverged."""
    _, h, _, _ = _train_line(x, y, w0, b0, lr, epochs)
    return {"final_loss": h.step_loss[-1] if h.step_loss else float("nan"),
            "diverged": bool(h.diverged or h.step_loss[-1] > h.step_loss[0]), "curve": h.step_loss}


def noise_floor(x, y, y_true) -> dict:
    """Split the least-squares line's MSE into the drawn noise and the part of it the line absorbs.

    With ``e = y - y_true`` and ``yhat`` the least-squares line, ``yhat - y_true`` is the
    projection of ``e`` onto ``span(x, 1)`` (``y_true`` lies in it), so by Pythagoras
    ``mean(e^2) = mean((y - yhat)^2) + mean((yhat - y_true)^2)``.
    """
    w_ols, b_ols, mse_ols = least_squares_line(x, y)
    noise = y - y_true
    return {"noise_mean_square": float(np.mean(noise**2)), "noise_mean": float(np.mean(noise)),
            "absorbed_by_line": float(np.mean((w_ols * x + b_ols - y_true) ** 2)), "mse_ols": mse_ols}


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run Stage 1; write its figures into ``out_dir``; return its :class:`Result`.

    ``jobs`` processes share the learning-rate sweep.
    """
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    x, y = make_line(c.n, c.true_a, c.true_b, c.noise)
    w0, b0 = float(np.random.randn()), float(np.random.randn())
    lin, hist, path_w, path_b = _train_line(x, y, w0, b0, c.lr, c.epochs)
    w, b = float(lin.W[0, 0]), float(lin.b[0])
    w_ols, b_ols, mse_ols = least_squares_line(x, y)

    # Learning-rate sweep, and the measured edge of stability by bisection.
    curv = curvature(x)
    sweep = dict(zip(c.sweep_lrs, pmap(_sweep_point, [(x, y, w0, b0, lr, c.epochs) for lr in c.sweep_lrs], jobs)))
    lo, hi = 0.5 * curv["lr_critical"], 1.5 * curv["lr_critical"]
    for _ in range(c.bisect_iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _diverges(x, y, w0, b0, mid, c.epochs) else (mid, hi)
    lr_measured = 0.5 * (lo + hi)

    # x all near zero: same noise and truth, inputs squeezed into +-2 * scale.
    xs = x * c.near_zero_scale
    ys = c.true_a * xs + c.true_b + (y - c.true_a * x - c.true_b)
    _, hist_small, sw, sb = _train_line(xs, ys, w0, b0, c.lr, c.epochs)
    ws_opt, bs_opt = np.polyfit(xs, ys, 1)
    curv_small = curvature(xs)

    def progress_made(path, opt):
        return float(1 - abs(path[-1] - opt) / abs(path[0] - opt))

    near_zero = {
        "x_range": [float(xs.min()), float(xs.max())],
        "w_final": float(sw[-1]), "b_final": float(sb[-1]),
        "w_optimum": float(ws_opt), "b_optimum": float(bs_opt),
        "w_progress": progress_made(sw, ws_opt), "b_progress": progress_made(sb, bs_opt),
        "curvature_w": float(curv_small["hessian"][0, 0]), "curvature_b": float(curv_small["hessian"][1, 1]),
        "steps_to_learn_w": float(1 / (c.lr * curv_small["hessian"][0, 0])),
    }
    normal_progress = {"w_progress": progress_made(path_w, w_ols), "b_progress": progress_made(path_b, b_ols)}

    figs = {
        "loss": plots.curves(out_dir / "stage1_loss.png", {"MSE": hist.step_loss}, "Stage 1: MSE over steps",
                             xlabel="step", ylabel="MSE", logy=True, hline=(mse_ols, "least-squares optimum")),
        "fit": plots.fit(out_dir / "stage1_fit.png", x, y, {f"learned: {w:.3f} x {b:+.3f}": w * x + b},
                         "Stage 1: learned line", truth=(x, c.true_a * x + c.true_b)),
        "lr_sweep": plots.curves(
            out_dir / "stage1_lr_sweep.png",
            {f"lr={lr:g}" + (" (diverges)" if s["diverged"] else ""): s["curve"] for lr, s in sweep.items()},
            f"Stage 1: learning-rate sweep (theory: diverges above {curv['lr_critical']:.4f})",
            xlabel="step", ylabel="MSE", logy=True, ylim=(0.5 * mse_ols, 1e3 * hist.step_loss[0])),
        "near_zero": plots.curves(
            out_dir / "stage1_near_zero.png",
            {"w (x in [-2, 2])": path_w, "b (x in [-2, 2])": path_b,
             f"w (x in ±{2 * c.near_zero_scale:g})": sw, f"b (x in ±{2 * c.near_zero_scale:g})": sb},
            "Stage 1: parameter trajectories, normal vs near-zero x", xlabel="step", ylabel="value"),
    }
    metrics = {
        "w": w, "b": b, "true_a": c.true_a, "true_b": c.true_b, "w_init": w0, "b_init": b0,
        "w_ols": w_ols, "b_ols": b_ols, "mse_ols": mse_ols,
        "loss_first": hist.step_loss[0], "loss_final": hist.step_loss[-1],
        "curvature": curv, "lr_critical_theory": float(curv["lr_critical"]), "lr_critical_measured": lr_measured,
        "sweep": {f"{lr:g}": {k: v for k, v in s.items() if k != "curve"} for lr, s in sweep.items()},
        "normal": normal_progress, "near_zero": near_zero, "n": c.n, "x_range": [float(x.min()), float(x.max())],
        "noise": noise_floor(x, y, c.true_a * x + c.true_b),
    }
    summary = [
        (f"learned w (true {c.true_a:g})", fmt(w)), (f"learned b (true {c.true_b:g})", fmt(b)),
        ("least-squares w, b", f"{fmt(w_ols)}, {fmt(b_ols)}"),
        ("MSE first -> last step", f"{fmt(hist.step_loss[0])} -> {fmt(hist.step_loss[-1])}"),
        ("lr bound 2/lambda_max (theory)", fmt(curv["lr_critical"])),
        ("lr where it diverges (measured)", fmt(lr_measured)),
        ("near-zero x: share of the way to the optimum, w / b",
         f"{fmt(100 * near_zero['w_progress'])}% / {fmt(100 * near_zero['b_progress'])}%"),
    ]
    return Result("1", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=hist.diverged, messages=[hist.message] if hist.diverged else [])
