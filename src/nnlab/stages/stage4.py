"""Stage 4 -- the credit-score model: L2-regularised linear regression and what its weights say.

The handout's set-up: five people, features [utilization, age, late payments]
standardized, a ``Linear(3, 1)`` trained on MSE + ``lam * sum(W**2)`` with lr 0.01
for 1,000 epochs.  Measured on top:

* weights on standardized features and in original units, and the feature ranking;
* the closed-form ridge solution of the *same* loss, and how far 1,000 epochs are
  from it (the loss's curvature says how slowly the last direction converges);
* a lambda sweep (0, 1e-2, 1e-1, 1, 10): every weight and the fit against lambda;
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


def ridge_closed_form(Xn, y, lam):
    """Minimiser of ``mean((Xn w + b - y)^2) + lam * ||w||^2`` for column-centred ``Xn``.

    Setting the gradient to zero gives ``b = mean(y)`` (the columns have mean 0, so
    the bias decouples) and ``(Xn^T Xn / n + lam I) w = Xn^T (y - mean y) / n``.
    """
    n, d = Xn.shape
    yc = y.ravel() - y.mean()
    w = np.linalg.solve(Xn.T @ Xn / n + lam * np.eye(d), Xn.T @ yc / n)
    return w, float(y.mean())


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


def train_to_convergence(Xn, y, lam, init, tol, max_epochs):
    """Gradient descent with the fastest safe step, ``lr = 1 / lambda_max``, until ``|grad| < tol``.

    Returns the layer, the epochs used and the final gradient norm.
    """
    lr = 1.0 / max(np.linalg.eigvalsh(loss_hessian(Xn, lam)).max(), 2.0)  # 2.0 is the bias's curvature
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


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 4; write its figures into ``out_dir``; return its :class:`Result`."""
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
    printed_W = np.round(W_orig, 6)
    printed_b = round(b_orig, 6)
    preds = {}
    for who, row in PEOPLE.items():
        z = (np.array(row, dtype=float).reshape(1, -1) - mu) / sigma
        preds[who] = {
            "features": row,
            "model": float(lin.forward(z)[0, 0]),
            "by_hand": float(printed_b + sum(w * v for w, v in zip(printed_W, row))),
            "hand_terms": [float(w * v) for w, v in zip(printed_W, row)],
        }

    # Lambda sweep: same initial weights and budget; closed form alongside.
    sweep = {}
    for lam in c.lams:
        m, h = train_credit(Xn, y, lam, c.lr, c.epochs, init_wb)
        w_lam, b_lam = ridge_closed_form(Xn, y, lam)
        fit_mse = float(np.mean((m.forward(Xn) - y) ** 2))
        cf_mse = float(np.mean((Xn @ w_lam + b_lam - y.ravel()) ** 2))
        sweep[f"{lam:g}"] = {"lam": lam, "W_std": m.W.ravel().copy(), "b": float(m.b[0]), "fit_mse": fit_mse,
                             "closed_form_W": w_lam, "closed_form_fit_mse": cf_mse,
                             "total_loss": h.step_loss[-1], "weight_norm": float(np.linalg.norm(m.W))}

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
        "feature_correlation": np.corrcoef(X.T), "predictions": preds,
        "printed_W_orig": printed_W, "printed_b_orig": printed_b, "sweep": sweep,
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
