"""Stage 4 -- the credit-score model: L2-regularised linear regression and what its weights say.

The handout's set-up: five people, features [utilization, age, late payments]
standardized, a ``Linear(3, 1)`` trained on MSE + ``lam * sum(W**2)`` with lr 0.01
for 1,000 epochs.  Measured on top:

* weights on standardized features and in original units, and the feature ranking;
* the closed-form ridge solution of the *same* loss (the exact minimum), and how far
  1,000 epochs are from it (the loss's curvature says how slowly the last direction
  converges);
* a lambda sweep (0, 1e-2, 1e-1, 1, 10): every weight after gradient descent and at the
  exact minimum, the fit as MSE and as R^2 against the mean predictor, how much the
  exact weights move when one person is left out, and the left-out person's error;
* why single weights can grow while the norm falls: the data's principal directions
  and how much of each one lambda keeps;
* the scores of ``[0.30, 21, 0]`` and ``[0.30, 65, 0]``, from the model and by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import CREDIT_FEATURES, credit_table
from nnlab.layers import Linear
from nnlab.losses import L2Penalty, MSELoss
from nnlab.optim import SGD
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.train import fit
from nnlab.utils import seed_everything, standardize_features, unstandardize_linear_weights

TITLE = "Stage 4 - credit-score weights with L2 regularisation"
PEOPLE = {"A": [0.30, 21, 0], "B": [0.30, 65, 0]}
PRINTED_DECIMALS = 6  # the original-unit weights as a reader would copy them for the by-hand scores


@dataclass
class Config:
    """Stage 4 settings (the handout's values by default)."""

    lam: float = 1e-2
    lr: float = 0.01
    epochs: int = 1000
    seed: int = 42
    lams: tuple = (0.0, 1e-2, 1e-1, 1.0, 10.0)
    converge_tol: float = 1e-10
    converge_max_epochs: int = 60000

    def quick(self) -> Config:
        """A seconds-long version for tests (the closed-form match still holds)."""
        return Config(**{**config_dict(self), "epochs": 300, "converge_max_epochs": 60000})


def ridge_closed_form(X, y, lam):
    """Minimiser ``(w, b)`` of ``mean((X w + b - y)^2) + lam * ||w||^2`` (the bias is not penalised).

    Setting the gradient to zero gives ``b = mean(y) - mean(X) w`` and, with the centred
    columns ``Xc = X - mean(X)``, ``(Xc^T Xc / n + lam I) w = Xc^T (y - mean y) / n``.
    (For standardised ``X`` the columns already have mean 0 and ``b = mean(y)``.)
    Least squares solves the system, so a singular one (``lam = 0``, few rows) gives
    its minimum-norm solution.

    Args:
        X: (n, d) features; y: (n,) or (n, 1) targets; lam: the L2 strength.
    """
    n, d = X.shape
    mean_x, mean_y = X.mean(axis=0), float(np.mean(y))
    Xc, yc = X - mean_x, np.ravel(y) - mean_y
    w = np.linalg.lstsq(Xc.T @ Xc / n + lam * np.eye(d), Xc.T @ yc / n, rcond=None)[0]
    return w, float(mean_y - mean_x @ w)


def leave_one_out(X, y, lam) -> dict:
    """Refit the exact minimum without each row in turn.

    Returns:
        ``weight_spread``: root-mean-square distance of the n leave-one-out weight vectors
        from their mean; ``weight_shift_from_full``: their root-mean-square distance from the
        exact minimum on all rows; ``mse``: mean squared error on each left-out row; ``mean_mse``:
        the same for the mean predictor (the mean of the other rows).
    """
    y = np.ravel(y)
    fits, errors, mean_errors = [], [], []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        w, b = ridge_closed_form(X[keep], y[keep], lam)
        fits.append(w)
        errors.append(float(X[i] @ w + b - y[i]) ** 2)
        mean_errors.append(float(y[keep].mean() - y[i]) ** 2)
    fits = np.array(fits)
    spread = float(np.sqrt(np.mean(np.sum((fits - fits.mean(axis=0)) ** 2, axis=1))))
    shift = float(np.sqrt(np.mean(np.sum((fits - ridge_closed_form(X, y, lam)[0]) ** 2, axis=1))))
    return {"weights": fits, "weight_spread": spread, "weight_shift_from_full": shift, "mse": float(np.mean(errors)),
            "mean_mse": float(np.mean(mean_errors))}


def principal_directions(Xn, lams) -> dict:
    """Eigen-directions of ``Xn^T Xn / n`` and the share ``d / (d + lam)`` of each that the exact minimum keeps.

    In these directions the ridge solution is the unregularised one with component ``i``
    multiplied by ``d_i / (d_i + lam)``: flat directions (small ``d``) shrink first.
    """
    n = Xn.shape[0]
    d, V = np.linalg.eigh(Xn.T @ Xn / n)
    return {"eigenvalues": d, "vectors": V.T,
            "kept": {f"{lam:g}": d / (d + lam) for lam in lams}}


def loss_hessian(Xn, lam):
    """Hessian of the regularised loss in ``w``: ``2 (Xn^T Xn / n + lam I)``."""
    n, d = Xn.shape
    return 2 * (Xn.T @ Xn / n + lam * np.eye(d))


def train_credit(Xn, y, lam, lr, epochs, init):
    """Train ``Linear(3, 1)`` from the weights ``init = (W, b)``; return the layer and history."""
    lin = Linear(Xn.shape[1], 1)
    lin.W[...], lin.b[...] = init
    hist = fit(lin, MSELoss(), SGD(lin.parameters(), lr=lr), Xn, y, epochs=epochs, penalty=L2Penalty(lam),
               name=f"stage 4 (lam {lam:g})")
    return lin, hist


def stable_lr_bound(Xn, lam) -> float:
    """Stage 1's bound: gradient descent on this quadratic loss converges iff ``lr < 2 / lambda_max``.

    ``lambda_max`` is the largest curvature over the weights (the Hessian's eigenvalues)
    and the bias (curvature 2).
    """
    return 2.0 / max(np.linalg.eigvalsh(loss_hessian(Xn, lam)).max(), 2.0)


def train_to_convergence(Xn, y, lam, init, tol, max_epochs):
    """Gradient descent with ``lr = 1 / lambda_max`` (half of the bound ``2 / lambda_max``) until ``|grad| < tol``.

    Half the bound makes the steepest direction converge in one step and keeps a margin.
    Returns the layer, the epochs used, the final gradient norm and the learning rate.
    """
    lr = stable_lr_bound(Xn, lam) / 2
    lin = Linear(Xn.shape[1], 1)
    lin.W[...], lin.b[...] = init
    opt, loss, pen = SGD(lin.parameters(), lr=lr), MSELoss(), L2Penalty(lam)
    used, gnorm = 0, np.inf
    while used < max_epochs:
        fit(lin, loss, opt, Xn, y, epochs=500, penalty=pen, name="stage 4 (to convergence)")
        used += 500
        _, g = loss(lin.forward(Xn), y)
        lin.backward(g)
        pen.backward(lin.parameters())
        gnorm = float(np.sqrt(np.sum(lin.dW**2) + np.sum(lin.db**2)))
        if gnorm < tol:
            break
    return lin, used, gnorm, lr


def l2_gradient_mini_check(lam: float, seed: int = 3, rows: int = 5) -> dict:
    """The handout's Stage 4 mini-check, measured: on one batch, the gradient with L2 minus the one without.

    The handout's batch: ``np.random.seed(seed)``, a ``Linear(3, 1)``, ``rows`` random rows and
    targets, the MSE gradient ``dy = 2 (yhat - y) / rows``.  The difference should be exactly the
    penalty's gradient ``d(lam ||W||^2)/dW = 2 lam W``.  NumPy's global generator is put back as
    it was, so the stage's own draws do not depend on this check.

    Returns:
        ``{"lam", "seed", "rows", "max_abs_error", "max_abs_expected"}``: ``max |(dW_reg - dW) - 2 lam W|``
        and, for scale, ``max |2 lam W|``.
    """
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        lin = Linear(in_dim=3, out_dim=1)
        X, y = np.random.randn(rows, 3), np.random.randn(rows, 1)
    finally:
        np.random.set_state(state)
    dy = (2.0 / rows) * (lin.forward(X) - y)
    lin.backward(dy)
    dW_plain = lin.dW.copy()
    lin.backward(dy)  # recompute the data gradient, then add the penalty's
    L2Penalty(lam).backward(lin.parameters())
    expected = 2 * lam * lin.W
    error = np.max(np.abs(lin.dW - dW_plain - expected))
    return {"lam": lam, "seed": seed, "rows": rows, "max_abs_error": float(error),
            "max_abs_expected": float(np.max(np.abs(expected)))}


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 4; write its figures into ``out_dir``; return its :class:`Result`.

    (Its runs take a fraction of a second each: too little to be worth a worker process.)
    """
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    X, y = credit_table()
    Xn, mu, sigma = standardize_features(X)
    init = Linear(in_dim=3, out_dim=1)  # the handout's initial weights, from np.random after the seed
    init_wb = (init.W.copy(), init.b.copy())

    lin, hist = train_credit(Xn, y, c.lam, c.lr, c.epochs, init_wb)
    W_std, b_std = lin.W.ravel().copy(), float(lin.b[0])
    W_orig, b_orig = unstandardize_linear_weights(W_std, b_std, mu, sigma)
    order = np.argsort(-np.abs(W_std))
    ranking = [{"feature": CREDIT_FEATURES[k], "abs_weight": float(abs(W_std[k])),
                "direction": "+" if W_std[k] >= 0 else "-"} for k in order]

    w_cf, b_cf = ridge_closed_form(Xn, y, c.lam)
    conv, conv_epochs, conv_gnorm, conv_lr = train_to_convergence(Xn, y, c.lam, init_wb, c.converge_tol,
                                                                  c.converge_max_epochs)
    H = loss_hessian(Xn, c.lam)
    eig = np.linalg.eigvalsh(H)
    slow_rate = 1 - c.lr * eig.min()

    # Predictions: the model on standardized inputs, and by hand from printed original-unit weights.
    printed_W = np.round(W_orig, PRINTED_DECIMALS)
    printed_b = round(b_orig, PRINTED_DECIMALS)
    preds = {}
    for who, row in PEOPLE.items():
        z = (np.array(row, dtype=float).reshape(1, -1) - mu) / sigma
        preds[who] = {
            "features": row,
            "model": float(lin.forward(z)[0, 0]),
            "by_hand": float(printed_b + sum(w * v for w, v in zip(printed_W, row))),
            "hand_terms": [float(w * v) for w, v in zip(printed_W, row)],
        }

    # Lambda sweep: same initial weights and budget; the exact minimum alongside.
    mean_mse = float(np.var(y))  # the MSE of predicting mean(y) for everyone
    sweep = {}
    for lam in c.lams:
        m, h = train_credit(Xn, y, lam, c.lr, c.epochs, init_wb)
        w_lam, b_lam = ridge_closed_form(Xn, y, lam)
        fit_mse = float(np.mean((m.forward(Xn) - y) ** 2))
        cf_mse = float(np.mean((Xn @ w_lam + b_lam - y.ravel()) ** 2))
        sweep[f"{lam:g}"] = {"lam": lam, "W_std": m.W.ravel().copy(), "b": float(m.b[0]), "fit_mse": fit_mse,
                             "closed_form_W": w_lam, "closed_form_fit_mse": cf_mse,
                             "r2": 1 - fit_mse / mean_mse, "closed_form_r2": 1 - cf_mse / mean_mse,
                             "total_loss": h.step_loss[-1], "weight_norm": float(np.linalg.norm(m.W)),
                             "closed_form_norm": float(np.linalg.norm(w_lam)),
                             "leave_one_out": leave_one_out(Xn, y, lam)}

    lams = np.array(c.lams, dtype=float)
    weight_series = {}
    for j, name in enumerate(CREDIT_FEATURES):
        color = f"C{j}"
        weight_series[f"{name} (GD, {c.epochs} ep)"] = (lams, [s["W_std"][j] for s in sweep.values()],
                                                        {"color": color, "marker": "o"})
        weight_series[f"{name} (closed form)"] = (lams, [s["closed_form_W"][j] for s in sweep.values()],
                                                  {"color": color, "ls": "--"})
    figs = {
        "loss": plots.curves(out_dir / "stage4_loss.png", {"MSE + L2": hist.step_loss},
                             f"Stage 4: credit score with L2 (lam={c.lam:g})", xlabel="epoch",
                             ylabel="total loss", logy=True),
        "weights": plots.bars(out_dir / "stage4_weights.png", list(CREDIT_FEATURES),
                              {f"GD, {c.epochs} epochs": W_std, "closed form (converged)": w_cf},
                              f"Stage 4: weights on standardized features (lam={c.lam:g})", ylabel="weight"),
        "lambda_weights": plots.curves(out_dir / "stage4_lambda_weights.png", weight_series,
                                       "Stage 4: weights shrink as lambda grows", xlabel="lambda (symlog)",
                                       ylabel="weight (standardized)", logx=True),
        "lambda_fit": plots.curves(out_dir / "stage4_lambda_fit.png",
                                   {f"GD, {c.epochs} epochs": (lams, [s["fit_mse"] for s in sweep.values()]),
                                    "closed form": (lams, [s["closed_form_fit_mse"] for s in sweep.values()])},
                                   "Stage 4: fit (MSE) against lambda", xlabel="lambda (symlog)", ylabel="MSE",
                                   logx=True, logy=True),
    }
    metrics = {
        "W_std": W_std, "b_std": b_std, "W_orig": W_orig, "b_orig": b_orig, "mu": mu.ravel(),
        "sigma": sigma.ravel(), "ranking": ranking, "loss_first": hist.step_loss[0],
        "loss_final": hist.step_loss[-1],
        "closed_form": {"W_std": w_cf, "b_std": b_cf},
        "gap_to_closed_form": float(np.max(np.abs(W_std - w_cf))),
        "converged": {"W_std": conv.W.ravel(), "b_std": float(conv.b[0]), "epochs": conv_epochs, "lr": conv_lr,
                      "grad_norm": conv_gnorm, "gap_to_closed_form": float(np.max(np.abs(conv.W.ravel() - w_cf)))},
        "hessian_eigenvalues": eig, "slow_mode_rate_per_epoch": slow_rate,
        "slow_mode_left_after_epochs": float(slow_rate**c.epochs),
        "feature_correlation": np.corrcoef(X.T), "predictions": preds, "mean_predictor_mse": mean_mse,
        "principal_directions": principal_directions(Xn, c.lams), "lr_bound": stable_lr_bound(Xn, c.lam),
        "rows": int(X.shape[0]), "features": list(CREDIT_FEATURES), "feature_min": X.min(axis=0),
        "feature_max": X.max(axis=0),
        "printed_W_orig": printed_W, "printed_b_orig": printed_b, "printed_decimals": PRINTED_DECIMALS,
        "sweep": sweep, "l2_mini_check": l2_gradient_mini_check(c.lam),
    }
    summary = [(f"w_std {name}", f"{fmt(W_std[j])} (closed form {fmt(w_cf[j])})")
               for j, name in enumerate(CREDIT_FEATURES)]
    summary += [
        ("bias (std)", fmt(b_std)),
        ("ranking by |w_std|", " > ".join(r["feature"] for r in ranking)),
        ("max |GD - closed form| after converging", f"{metrics['converged']['gap_to_closed_form']:.1e}"),
        ("score A [0.30, 21, 0] model / by hand", f"{preds['A']['model']:.2f} / {preds['A']['by_hand']:.2f}"),
        ("score B [0.30, 65, 0] model / by hand", f"{preds['B']['model']:.2f} / {preds['B']['by_hand']:.2f}"),
    ]
    return Result("4", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=hist.diverged, messages=[hist.message] if hist.diverged else [])
