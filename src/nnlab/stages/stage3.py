"""Stage 3 -- a one-hidden-layer MLP on a sine, ReLU against tanh, short against long training.

The handout's set-up: 400 points of ``sin(2 pi x) + 0.1 N(0, 1)`` on [-1, 1], an
``MLP(1, 32, 1)``, plain full-batch gradient descent with lr 0.005.  Both
activations start from the *same* initial weights and see the same data; each is
trained for the long budget (15,000 epochs) with a snapshot at the short one
(1,500), so the comparison isolates the activation and the training time.

Bias and variance are measured, not guessed: the error against the noisy
training targets, and the error against the noise-free sine on a fine grid (the
part that generalises).  Whether the misfit is the optimiser's or the network's is
measured too:

* **optimiser**: the same network from the same start, trained by Adam for the same
  number of epochs;
* **capacity**: the error of the best possible output layer (least squares against the
  sine itself) on the hidden units at the start, after the handout's training, and on
  32 ReLU units with random kinks; with the norm its weights need and the condition number
  of the units, and again with the output weights held to ``capacity_norm_multiple`` times
  the trained output layer's norm (:func:`output_layer_fit`), the size training produces.

Variance is measured too: each activation under each optimiser is trained again on
``variance_draws`` draws of the data, each with its own noise and its own initial weights
(draw 1 is the run above), and the draws' predictions on the grid are split into squared
bias and variance (:func:`nnlab.stages.bias_variance.bias_variance`).  The handout's step runs
for the short budget there (``epochs``): at the long one the draws would cost far more time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import make_sine
from nnlab.errors import NnlabValueError
from nnlab.functional import relu, relu_backward
from nnlab.losses import MSELoss
from nnlab.models import MLP
from nnlab.optim import SGD, Adam
from nnlab.parallel import run_calls
from nnlab.stages.bias_variance import bias_variance
from nnlab.stages.common import Result, config_dict, fmt, least_squares_line
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
    adam_lr: float = 1e-3
    grid_points: int = 1001
    # the bounded capacity: output weights at most this multiple of the handout-trained output layer's norm
    capacity_norm_multiple: float = 10.0
    # draws of the data (noise and initial weights) for the bias/variance split; draw k uses seed + k
    variance_draws: int = 5

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "epochs": 300, "long_epochs": 1500, "variance_draws": 2})


def span_error(H, target) -> float:
    """How far ``target`` lies from everything an output layer on the features ``H`` can draw.

    Args:
        H: (m, k) hidden activations on a grid; target: (m,) the function on that grid.
    Returns:
        ``mean(([H, 1] c - target)^2)`` for the least-squares ``c``: the error of the best
        possible output layer of any size on these hidden units, whatever the optimiser finds.
    """
    return output_layer_fit(H, target)["mse"]


def output_layer_fit(H, target, max_weight_norm=None) -> dict:
    """The best output layer ``H w + b`` for ``target``, unbounded or with ``||w||_2 <= max_weight_norm``.

    Why a bound: the unbounded least-squares fit says what the span of the hidden units holds,
    but when the units are nearly collinear (tanh units with small first-layer weights are all
    close to ``w x`` on [-1, 1]) it reaches that by cancelling huge weights against each other,
    which no output layer trained from a small start gets near.  Bounding the weights to a
    stated multiple of a trained output layer's norm asks what an output layer of the size
    training actually produces could draw on these units.

    The bounded problem ``min mean((H w + b - t)^2)`` s.t. ``||w|| <= B`` (bias free) is convex.
    If the unbounded minimum-norm solution already has ``||w|| <= B`` it is the answer;
    otherwise the answer lies on the boundary and is the ridge solution
    ``w(lam) = V diag(s / (s^2 + lam)) U^T (t - mean t)`` of the centred features
    ``H - mean H = U diag(s) V^T`` whose norm is exactly ``B`` (the KKT conditions). ``||w(lam)||``
    falls monotonically in ``lam``, so ``lam`` is found by bisection on ``log lam``.

    Args:
        H: (m, k) features; target: (m,) values; max_weight_norm: the bound ``B`` (None: no bound).
    Returns:
        ``{"mse", "weight_norm", "condition"}``: the fit's mean squared error, ``||w||_2``, and
        the 2-norm condition number of ``[H, 1]`` (how nearly collinear the features are).
    """
    if max_weight_norm is not None and not max_weight_norm > 0:
        raise NnlabValueError(f"output_layer_fit: max_weight_norm must be positive or None, got {max_weight_norm!r}")
    H, target = np.asarray(H, dtype=float), np.asarray(target, dtype=float).ravel()
    A = np.c_[H, np.ones(len(H))]
    condition = float(np.linalg.cond(A))
    if max_weight_norm is None:
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        return {"mse": float(np.mean((A @ coef - target) ** 2)), "weight_norm": float(np.linalg.norm(coef[:-1])),
                "condition": condition}
    H_mean, t_mean = H.mean(axis=0), target.mean()
    U, s, Vt = np.linalg.svd(H - H_mean, full_matrices=False)
    proj = U.T @ (target - t_mean)
    kept = s > s.max() * max(H.shape) * np.finfo(float).eps if s.size and s.max() > 0 else np.zeros_like(s, bool)

    def weights(lam):
        return Vt[kept].T @ (s[kept] * proj[kept] / (s[kept] ** 2 + lam))

    w = weights(0.0)
    if np.linalg.norm(w) > max_weight_norm:
        lo, hi = -60.0, 60.0  # log10 lam: 1e-60 leaves w at the unbounded fit, 1e60 shrinks it to ~0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.linalg.norm(weights(10.0**mid)) > max_weight_norm else (lo, mid)
        w = weights(10.0**hi)  # the side whose norm is within the bound
    fit = (H - H_mean) @ w + t_mean
    return {"mse": float(np.mean((fit - target) ** 2)), "weight_norm": float(np.linalg.norm(w)),
            "condition": condition}


def relu_mini_check() -> dict:
    """The handout's Stage 3 mini-check, measured: ``relu`` and ``relu_backward`` on its three inputs.

    ``z = (-2, 0, 3)`` and ``dout = (10, 10, 10)``; the handout expects ``(0, 0, 3)`` and
    ``(0, 0, 10)`` (the derivative at exactly 0 is 0).  Returns the inputs, the outputs, the
    expected values and ``max_abs_error``, the largest |output - expected| over both.
    """
    z, dout = np.array([-2.0, 0.0, 3.0]), np.array([10.0, 10.0, 10.0])
    expected_relu, expected_backward = np.array([0.0, 0.0, 3.0]), np.array([0.0, 0.0, 10.0])
    out, grad = relu(z), relu_backward(z, dout)
    error = max(np.max(np.abs(out - expected_relu)), np.max(np.abs(grad - expected_backward)))
    return {"z": z, "dout": dout, "relu": out, "relu_backward": grad, "expected_relu": expected_relu,
            "expected_backward": expected_backward, "max_abs_error": float(error)}


def _start(c: Config, nonlin: str, optimizer: str, init_seed: int):
    """The untrained ``MLP(1, hidden, 1)`` from ``init_seed`` and its optimiser (the handout's step or Adam)."""
    model = MLP(1, c.hidden, 1, nonlin=nonlin, rng=np.random.default_rng(init_seed))
    opt = SGD(model.parameters(), lr=c.lr) if optimizer == "sgd" else Adam(model.parameters(), lr=c.adam_lr)
    return model, opt


def _draw_prediction(c: Config, nonlin: str, optimizer: str, draw_seed: int, epochs: int, grid) -> dict:
    """One network trained for ``epochs`` on its own draw: ``{"grid": (m,) prediction, "diverged", "message"}``.

    ``draw_seed`` sets both the noise (``seed_everything`` before :func:`make_sine`, as the stage
    does) and the initial weights, so ``draw_seed = seed`` repeats the stage's own run.
    """
    seed_everything(draw_seed)
    x, y = make_sine(c.n, c.noise)
    model, opt = _start(c, nonlin, optimizer, draw_seed)
    hist = fit(model, MSELoss(), opt, x.reshape(-1, 1), y.reshape(-1, 1), epochs=epochs, progress=False,
               name=f"stage 3 ({nonlin}, {optimizer}, draw seed {draw_seed})")
    return {"grid": model.predict(grid).ravel(), "diverged": hist.diverged, "message": hist.message}


def _train(c: Config, nonlin: str, optimizer: str, x, y, grid, clean, progress: bool) -> dict:
    """One network from the seeded start: its curve, errors at both budgets, fits, and a readout of its hidden units."""
    X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
    model, opt = _start(c, nonlin, optimizer, c.seed)
    hidden_init = model.forward(grid)[1]
    snapshot = {}

    def snap(epoch):
        if epoch + 1 == c.epochs:
            snapshot["train_pred"] = model.predict(X).ravel()
            snapshot["grid_pred"] = model.predict(grid).ravel()
        return {}

    hist = fit(model, MSELoss(), opt, X, Y, epochs=max(c.epochs, c.long_epochs), evaluate=snap, progress=progress,
               name=f"stage 3 ({nonlin}, {optimizer})")
    train_long = model.predict(X).ravel()
    grid_long = model.predict(grid).ravel()
    # the capacity of the units before and after training: unbounded, and with output weights at most
    # capacity_norm_multiple times the norm of the output layer this training produced
    hidden_long = model.forward(grid)[1]
    trained_norm = float(np.linalg.norm(model.l2.W))
    bound = c.capacity_norm_multiple * trained_norm
    init_fit, long_fit = output_layer_fit(hidden_init, clean), output_layer_fit(hidden_long, clean)
    init_bounded = output_layer_fit(hidden_init, clean, bound)
    long_bounded = output_layer_fit(hidden_long, clean, bound)
    short = len(hist.step_loss) >= c.epochs and snapshot
    return {
        "train_mse_short": hist.step_loss[c.epochs - 1] if short else float("nan"),
        "truth_mse_short": float(np.mean((snapshot["grid_pred"] - clean) ** 2)) if short else float("nan"),
        "train_mse_long": float(np.mean((train_long - y) ** 2)),
        "truth_mse_long": float(np.mean((grid_long - clean) ** 2)),
        "loss_first": hist.step_loss[0], "diverged": hist.diverged, "message": hist.message,
        "span_error_init": init_fit["mse"], "span_error_long": long_fit["mse"],
        "span_weight_norm_init": init_fit["weight_norm"], "span_weight_norm_long": long_fit["weight_norm"],
        "span_condition_init": init_fit["condition"], "span_condition_long": long_fit["condition"],
        "output_weight_norm": trained_norm, "span_weight_bound": bound,
        "bounded_span_error_init": init_bounded["mse"], "bounded_span_error_long": long_bounded["mse"],
        "bounded_span_weight_norm_init": init_bounded["weight_norm"],
        "bounded_span_weight_norm_long": long_bounded["weight_norm"],
        "curve": hist.step_loss, "fit_short": snapshot.get("train_pred"), "fit_long": train_long,
        # a run that stopped before the short budget has no short prediction: NaN, not a missing key
        "grid_short": snapshot.get("grid_pred", np.full(len(grid), np.nan)), "grid_long": grid_long,
    }


def _draws_figure(path, grid, clean, predictions: dict, title: str) -> Path:
    """Every draw's fitted curve, faint, one colour per activation, over the sine; ``predictions[nonlin]`` is (K, m)."""
    series = {"sin(2πx)": (grid, clean, {"color": "black", "ls": "--", "lw": 1.2})}
    for colour, (nonlin, fits) in zip(("C0", "C1", "C2", "C3"), predictions.items()):
        for k, fit_k in enumerate(fits):
            # Matplotlib leaves labels that start with "_" out of the legend: one entry per activation
            series[f"{nonlin}, each draw" if k == 0 else f"_{nonlin} {k}"] = (grid, fit_k, {"color": colour, "lw": 0.9,
                                                                                              "alpha": 0.5})
    return plots.curves(path, series, title, xlabel="x", ylabel="prediction")


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run Stage 3; write its figures into ``out_dir``; return its :class:`Result`.

    ``jobs`` processes share the training runs (each activation with each optimizer, and their
    ``variance_draws - 1`` extra draws).
    """
    c = config
    if isinstance(c.variance_draws, bool) or not isinstance(c.variance_draws, int) or c.variance_draws < 2:
        raise NnlabValueError(f"stage 3: variance_draws must be an integer of at least 2 (a variance needs two "
                              f"draws), got {c.variance_draws!r}")
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    x, y = make_sine(c.n, c.noise)
    grid = np.linspace(-1, 1, c.grid_points).reshape(-1, 1)
    clean = np.sin(2 * math.pi * grid).ravel()

    plan = [(nonlin, opt) for opt in ("sgd", "adam") for nonlin in c.nonlins]
    # the bias/variance draws: draw 1 is the run above; the others repeat its recipe on new noise and weights
    draw_seeds = [c.seed + k for k in range(c.variance_draws)]
    draw_epochs = {"sgd": c.epochs, "adam": c.long_epochs}
    draw_plan = [(nonlin, opt, s) for opt in ("sgd", "adam") for nonlin in c.nonlins for s in draw_seeds[1:]]
    calls = ([(_train, (c, nonlin, opt, x, y, grid, clean, progress and jobs <= 1)) for nonlin, opt in plan]
             + [(_draw_prediction, (c, nonlin, opt, s, draw_epochs[opt], grid)) for nonlin, opt, s in draw_plan])
    outcomes = run_calls(calls, jobs)
    trained = dict(zip(plan, outcomes[:len(plan)]))
    drawn = dict(zip(draw_plan, outcomes[len(plan):]))
    own_run = {"sgd": "grid_short", "adam": "grid_long"}
    predictions = {opt: {nonlin: np.stack([trained[nonlin, opt][own_run[opt]]]
                                          + [drawn[nonlin, opt, s]["grid"] for s in draw_seeds[1:]])
                         for nonlin in c.nonlins} for opt in ("sgd", "adam")}
    variance = {"draws": c.variance_draws, "seeds": draw_seeds, "epochs": draw_epochs}
    variance |= {opt: {nonlin: bias_variance(p, clean) for nonlin, p in by_nonlin.items()}
                 for opt, by_nonlin in predictions.items()}
    keys = ("train_mse_short", "truth_mse_short", "train_mse_long", "truth_mse_long", "loss_first", "span_error_init",
            "span_error_long", "span_weight_norm_init", "span_weight_norm_long", "span_condition_init",
            "span_condition_long", "output_weight_norm", "span_weight_bound", "bounded_span_error_init",
            "bounded_span_error_long", "bounded_span_weight_norm_init", "bounded_span_weight_norm_long")
    runs = {nonlin: {k: trained[nonlin, "sgd"][k] for k in keys} for nonlin in c.nonlins}
    adam = {nonlin: {k: trained[nonlin, "adam"][k] for k in ("train_mse_long", "truth_mse_long", "diverged",
                                                              "output_weight_norm")}
            for nonlin in c.nonlins}
    messages = [t["message"] for t in [*trained.values(), *drawn.values()] if t["diverged"]]

    # As many ReLU units as the network has, with kinks spread at random over the data: what can they draw?
    rng = np.random.default_rng(c.seed)
    kinks, slopes = rng.uniform(x.min(), x.max(), c.hidden), rng.choice([-1.0, 1.0], c.hidden)
    random_kinks_span_error = span_error(relu(slopes * (grid - kinks)), clean)
    _, _, line_mse = least_squares_line(grid.ravel(), clean)  # the best any straight line can do
    # ReLU units whose kinks all sit at x = 0 span only 1, x and |x|: what can they draw?
    kinks_at_zero_span_error = span_error(np.c_[grid, np.abs(grid)], clean)
    init_hidden_bias = MLP(1, c.hidden, 1, nonlin="relu", rng=np.random.default_rng(c.seed)).parameters()[1].value
    noise_mean_square = float(np.mean((y - np.sin(2 * math.pi * x)) ** 2))

    truth = (x, np.sin(2 * math.pi * x))
    figs = {
        "loss": plots.curves(out_dir / "stage3_loss.png",
                             {f"{nonlin} MLP, {'Adam' if opt == 'adam' else 'handout SGD'}": t["curve"]
                              for (nonlin, opt), t in trained.items()},
                             f"Stage 3: MSE over {c.long_epochs} epochs", xlabel="epoch", ylabel="MSE", logy=True,
                             hline=(noise_mean_square, "mean square of the noise drawn")),
        "fit_short": plots.fit(out_dir / "stage3_fit_short.png", x, y, {f"{k}, {c.epochs} epochs": trained[k, "sgd"][
                               "fit_short"] for k in c.nonlins if trained[k, "sgd"]["fit_short"] is not None},
                               f"Stage 3: predictions after {c.epochs} epochs (lr {c.lr:g})", truth=truth),
        "fit_long": plots.fit(out_dir / "stage3_fit_long.png", x, y, {f"{k}, {c.long_epochs} epochs": trained[k, "sgd"][
                              "fit_long"] for k in c.nonlins},
                              f"Stage 3: predictions after {c.long_epochs} epochs (lr {c.lr:g})", truth=truth),
        **{f"draws_{opt}": _draws_figure(out_dir / f"stage3_draws_{opt}.png", grid.ravel(), clean, predictions[opt],
                                         f"Stage 3: {c.variance_draws} draws, {label}, {draw_epochs[opt]} epochs")
           for opt, label in (("sgd", "handout SGD"), ("adam", "Adam"))},
        "fit_adam": plots.fit(out_dir / "stage3_fit_adam.png", x, y, {f"{k}, Adam, {c.long_epochs} epochs": trained[
                              k, "adam"]["fit_long"] for k in c.nonlins},
                              f"Stage 3: the same networks trained by Adam (lr {c.adam_lr:g})", truth=truth),
    }
    metrics = {
        "runs": runs, "adam": adam, "random_kinks_span_error": random_kinks_span_error, "n": c.n,
        "x_range": [float(x.min()), float(x.max())], "grid_points": c.grid_points,
        "noise_floor": c.noise**2, "noise_mean_square": noise_mean_square,
        "kinks_at_zero_span_error": kinks_at_zero_span_error,
        "init_hidden_bias_max_abs": float(np.max(np.abs(init_hidden_bias))),
        "grid_symmetric": bool(np.allclose(grid.ravel(), -grid.ravel()[::-1])),
        "target_odd_max_abs": float(np.max(np.abs(clean + clean[::-1]))),
        "sine_variance": float(np.var(clean)), "line_mse": line_mse, "relu_mini_check": relu_mini_check(),
        "variance": variance,
        "parameters": sum(p.value.size for p in MLP(1, c.hidden, 1, rng=np.random.default_rng(0)).parameters()),
    }
    summary = []
    for k, r in runs.items():
        summary.append((f"{k}: train MSE {c.epochs} / {c.long_epochs} ep",
                        f"{fmt(r['train_mse_short'])} / {fmt(r['train_mse_long'])}"))
        summary.append((f"{k}: MSE vs true sine {c.epochs} / {c.long_epochs} ep",
                        f"{fmt(r['truth_mse_short'])} / {fmt(r['truth_mse_long'])}"))
        summary.append((f"{k}: MSE vs true sine, Adam {c.long_epochs} ep", fmt(adam[k]["truth_mse_long"])))
        for opt, label in (("sgd", f"handout step {c.epochs} ep"), ("adam", f"Adam {c.long_epochs} ep")):
            split = variance[opt][k]
            summary.append((f"{k}: bias^2 / variance over {c.variance_draws} draws, {label}",
                            f"{fmt(split['bias_sq'])} / {fmt(split['variance'])}"))
    return Result("3", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=bool(messages), messages=messages)
