"""Stage 6 -- the credit model again, in TensorFlow/Keras, cross-checked three ways.

The handout's Keras programme: ``Dense(1)`` with ``kernel_regularizer=L2(lam)`` on the
standardized credit table, SGD lr 0.1, MSE, 1,000 epochs through ``model.fit``, a
per-epoch loss callback, weights in both unit systems, a ranking and two predictions.

Cross-checks, all produced here:

* **same trajectory**: nnlab's ``Linear(3, 1)`` in float32, started from Keras's
  initial weights and trained with the same lr, lambda and epochs, ends where Keras ends;
* **same optimum (three-way)**: Keras and nnlab each trained to convergence, and the
  closed-form ridge solution of the same loss, agree within ``tolerance``;
* **same shrinkage**: the three agree across the lambda sweep.

``model.fit`` pays Keras's bookkeeping on every epoch (tens of milliseconds here), so the
1,000-epoch handout run dominates the stage's time.  The convergence runs use the same Keras model and optimizer in a
compiled ``tf.function`` loop (~0.2 ms a step), which gives the same weights as
``model.fit`` (checked in ``metrics["compiled_loop_vs_fit"]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data import CREDIT_FEATURES, credit_table
from nnlab.layers import Linear
from nnlab.losses import L2Penalty, MSELoss
from nnlab.optim import SGD
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.stages.stage4 import PEOPLE, loss_hessian, ridge_closed_form, train_to_convergence
from nnlab.train import fit
from nnlab.utils import seed_everything, standardize_features, unstandardize_linear_weights

TITLE = "Stage 6 - the credit model in TensorFlow/Keras"
INSTALL_HINT = "Stage 6 needs TensorFlow: pip install -e '.[tf]' (or pip install tensorflow-cpu)"


class MissingDependencyError(ImportError):
    """An optional extra (here TensorFlow) is not installed."""


@dataclass
class Config:
    """Stage 6 settings (the handout's values by default)."""

    lam: float = 1e-2
    lr: float = 0.1
    epochs: int = 1000
    seed: int = 42
    lams: tuple = (0.0, 1e-2, 1e-1, 1.0, 10.0)
    converge_steps: int = 30000
    tolerance: float = 1e-3

    def quick(self) -> Config:
        """A seconds-long version for tests (convergence runs keep their length: they are fast)."""
        return Config(**{**config_dict(self), "epochs": 50})


def import_tensorflow():
    """Import TensorFlow quietly, or raise :class:`MissingDependencyError` with the install command."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN reorders float sums between runs; off, so the same seed gives the same numbers
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    tf.get_logger().setLevel("ERROR")  # each lambda's compiled loop is traced anew, on purpose: no warning
    tf.config.experimental.enable_op_determinism()  # same seed, same numbers (REPORT.md is checked)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow was already running in this process; its threads are fixed
        pass
    return tf


def build_keras_model(tf, lam, lr):
    """The handout's model: ``Dense(1)`` with L2 on the kernel, SGD, MSE."""
    model = tf.keras.Sequential([
        tf.keras.layers.Input(shape=(3,)),
        tf.keras.layers.Dense(units=1, activation=None, use_bias=True,
                              kernel_regularizer=tf.keras.regularizers.L2(lam)),
    ])
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


def keras_compiled_descent(tf, model, Xn, y, steps):
    """Full-batch gradient descent on ``model``'s compiled loss (MSE + its L2 terms) in a ``tf.function``."""
    opt = model.optimizer
    Xt = tf.constant(Xn, tf.float32)
    yt = tf.constant(y, tf.float32)

    @tf.function
    def run(n):
        loss = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(Xt, training=True) - yt)) + tf.add_n(
                    model.losses or [tf.constant(0.0)])
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return float(run(tf.constant(steps)))


def _keras_weights(model):
    kernel, bias = model.layers[0].get_weights()
    return kernel[:, 0].astype(np.float64), float(bias[0])


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 6; write its figures into ``out_dir``; return its :class:`Result`."""
    tf = import_tensorflow()
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    tf.keras.utils.set_random_seed(c.seed)
    X, y = credit_table()
    Xn, mu, sigma = standardize_features(X)

    model = build_keras_model(tf, c.lam, c.lr)
    init = [w.copy() for w in model.get_weights()]
    losses = []

    class LossHistory(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            losses.append(float(logs["loss"]))  # data loss + L2 penalty

    model.fit(Xn, y, epochs=c.epochs, batch_size=len(y), verbose=0, callbacks=[LossHistory()])
    W_std, b_std = _keras_weights(model)
    W_orig, b_orig = unstandardize_linear_weights(W_std, b_std, mu, sigma)
    order = np.argsort(-np.abs(W_std))
    preds = {}
    for who, row in PEOPLE.items():
        z = (np.array(row, dtype=float).reshape(1, -1) - mu) / sigma
        preds[who] = {"features": row, "model": float(model.predict(z, verbose=0)[0, 0]),
                      "closed_form": float(np.dot(W_orig, row) + b_orig)}

    # nnlab on Keras's own starting point: same float32 arithmetic, same steps.
    twin = Linear(3, 1, dtype=np.float32)
    twin.W[...] = init[0].T
    twin.b[...] = init[1]
    twin_hist = fit(twin, MSELoss(), SGD(twin.parameters(), lr=c.lr), Xn.astype(np.float32),
                    y.astype(np.float32), epochs=c.epochs, penalty=L2Penalty(c.lam), name="stage 6 (nnlab twin)")
    twin_gap = float(np.max(np.abs(twin.W.ravel() - W_std)))

    # The compiled loop against model.fit, from the same start, same number of steps.
    check = build_keras_model(tf, c.lam, c.lr)
    check.set_weights(init)
    keras_compiled_descent(tf, check, Xn, y, c.epochs)
    loop_gap = float(np.max(np.abs(_keras_weights(check)[0] - W_std)))

    # Three-way agreement at every lambda: Keras and nnlab trained to convergence, and the closed form.
    sweep = {}
    nn_init = (init[0].T.astype(np.float64), init[1].astype(np.float64))
    for lam in c.lams:
        # lr 0.1 diverges at lam = 10 (above 2 / lambda_max); both use the safe step 1 / lambda_max
        safe_lr = 1.0 / max(np.linalg.eigvalsh(loss_hessian(Xn, lam)).max(), 2.0)
        km = build_keras_model(tf, lam, safe_lr)
        km.set_weights(init)
        keras_compiled_descent(tf, km, Xn, y, c.converge_steps)
        kw, kb = _keras_weights(km)
        nn, *_ = train_to_convergence(Xn, y, lam, nn_init, tol=1e-10, max_epochs=60000)
        cw, cb = ridge_closed_form(Xn, y, lam)
        trio = {"keras": kw, "nnlab": nn.W.ravel().copy(), "closed_form": cw}
        worst = max(float(np.max(np.abs(a - b))) for a in trio.values() for b in trio.values())
        sweep[f"{lam:g}"] = {**trio, "lam": lam, "bias": {"keras": kb, "nnlab": float(nn.b[0]), "closed_form": cb},
                             "max_abs_disagreement": worst, "agree": worst <= c.tolerance,
                             "weight_norm": float(np.linalg.norm(cw))}
    main = sweep[f"{c.lam:g}"]

    lams = np.array(c.lams, dtype=float)
    series = {}
    for j, name in enumerate(CREDIT_FEATURES):
        for who, style in (("keras", {"marker": "o", "ls": "none"}), ("nnlab", {"marker": "x", "ls": "none"}),
                           ("closed_form", {"ls": "-"})):
            series[f"{name} ({who.replace('_', ' ')})"] = (lams, [s[who][j] for s in sweep.values()],
                                                           {"color": f"C{j}", **style})
    figs = {
        "loss": plots.curves(out_dir / "stage6_loss.png", {"Keras: MSE + L2": losses},
                             f"Stage 6: Keras credit model with L2 (lam={c.lam:g})", ylabel="total loss", logy=True),
        "three_way": plots.bars(out_dir / "stage6_three_way.png", list(CREDIT_FEATURES),
                                {"Keras (converged)": main["keras"], "nnlab (converged)": main["nnlab"],
                                 "closed form": main["closed_form"], f"Keras, {c.epochs} epochs (handout)": W_std},
                                f"Stage 6: weights on standardized features (lam={c.lam:g})", ylabel="weight"),
        "lambda_sweep": plots.curves(out_dir / "stage6_lambda_sweep.png", series,
                                     "Stage 6: shrinkage in Keras, nnlab and closed form", xlabel="lambda (symlog)",
                                     ylabel="weight (standardized)", logx=True),
    }
    metrics = {
        "W_std": W_std, "b_std": b_std, "W_orig": W_orig, "b_orig": b_orig, "loss_first": losses[0],
        "loss_final": losses[-1],
        "ranking": [{"feature": CREDIT_FEATURES[k], "abs_weight": float(abs(W_std[k])),
                     "direction": "+" if W_std[k] >= 0 else "-"} for k in order],
        "predictions": preds, "keras_init": {"W": init[0].ravel(), "b": init[1]},
        "nnlab_twin": {"W_std": twin.W.ravel(), "b_std": float(twin.b[0]), "max_abs_gap_to_keras": twin_gap,
                       "loss_final": twin_hist.step_loss[-1]},
        "compiled_loop_vs_fit": loop_gap, "tolerance": c.tolerance, "sweep": sweep,
        "all_agree": all(s["agree"] for s in sweep.values()), "tensorflow": tf.__version__,
    }
    summary = [(f"Keras w_std {n} ({c.epochs} epochs)", fmt(W_std[j])) for j, n in enumerate(CREDIT_FEATURES)]
    summary += [
        ("|nnlab twin - Keras| after the same epochs", f"{twin_gap:.1e}"),
        (f"three-way max disagreement at lam={c.lam:g} (tol {c.tolerance:g})", f"{main['max_abs_disagreement']:.1e}"),
        ("all lambdas agree", str(metrics["all_agree"])),
        ("score A / B (Keras)", f"{preds['A']['model']:.2f} / {preds['B']['model']:.2f}"),
        ("score A / B (closed form from weights)",
         f"{preds['A']['closed_form']:.2f} / {preds['B']['closed_form']:.2f}"),
    ]
    return Result("6", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary)
