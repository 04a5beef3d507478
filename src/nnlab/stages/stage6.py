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

``model.fit`` pays Keras's bookkeeping (callbacks, logs, a data pass) on every epoch,
so the convergence runs use the same Keras model and optimizer in a compiled
``tf.function`` loop instead; from the same start and for the same number of steps it
gives the same weights as ``model.fit`` (measured: ``metrics["compiled_loop_vs_fit"]``).
The handout's run and each lambda of the sweep are independent and share out over
``jobs`` processes; each seeds TensorFlow itself, so the numbers do not depend on ``jobs``.
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
from nnlab.parallel import run_calls
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.stages.stage4 import PEOPLE, ridge_closed_form, stable_lr_bound, train_to_convergence
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


def _seeded_model(tf, c: Config, lam, lr):
    """The handout's model built right after seeding: the same initial weights in any process."""
    tf.keras.utils.set_random_seed(c.seed)
    model = build_keras_model(tf, lam, lr)
    return model, [w.copy() for w in model.get_weights()]


def _handout_run(c: Config, Xn, y, mu, sigma) -> dict:
    """The handout's programme through ``model.fit``, nnlab's float32 twin, and the compiled loop against ``fit``."""
    tf = import_tensorflow()
    model, init = _seeded_model(tf, c, c.lam, c.lr)
    losses = []

    class LossHistory(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            losses.append(float(logs["loss"]))  # data loss + L2 penalty

    # The five rows go in as one cached batch: given NumPy arrays, model.fit rebuilds its data adapter
    # and reshuffles on every epoch, bookkeeping that outweighs five rows' arithmetic. The batch, the
    # model, the optimizer and the number of epochs are the handout's.
    batch = tf.data.Dataset.from_tensor_slices((Xn.astype(np.float32), y.astype(np.float32))).batch(len(y)).cache()
    model.fit(batch, epochs=c.epochs, verbose=0, shuffle=False, callbacks=[LossHistory()])
    W_std, b_std = _keras_weights(model)
    W_orig, b_orig = unstandardize_linear_weights(W_std, b_std, mu, sigma)
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

    # The compiled loop against model.fit, from the same start, same number of steps.
    check = build_keras_model(tf, c.lam, c.lr)
    check.set_weights(init)
    keras_compiled_descent(tf, check, Xn, y, c.epochs)
    return {"init": init, "losses": losses, "W_std": W_std, "b_std": b_std, "W_orig": W_orig, "b_orig": b_orig,
            "predictions": preds, "twin_W": twin.W.ravel().copy(), "twin_b": float(twin.b[0]),
            "twin_loss_final": twin_hist.step_loss[-1],
            "loop_gap": float(np.max(np.abs(_keras_weights(check)[0] - W_std))), "tensorflow": tf.__version__}


def _three_way(c: Config, lam, Xn, y) -> dict:
    """Keras and nnlab trained to convergence from Keras's initial weights, and the closed form, at one lambda."""
    tf = import_tensorflow()
    # lr 0.1 diverges at lam = 10 (above Stage 1's bound 2 / lambda_max); both use half the bound
    safe_lr = stable_lr_bound(Xn, lam) / 2
    km, init = _seeded_model(tf, c, lam, safe_lr)
    keras_compiled_descent(tf, km, Xn, y, c.converge_steps)
    kw, kb = _keras_weights(km)
    nn_init = (init[0].T.astype(np.float64), init[1].astype(np.float64))
    nn, *_ = train_to_convergence(Xn, y, lam, nn_init, tol=1e-10, max_epochs=60000)
    cw, cb = ridge_closed_form(Xn, y, lam)
    trio = {"keras": kw, "nnlab": nn.W.ravel().copy(), "closed_form": cw}
    worst = max(float(np.max(np.abs(a - b))) for a in trio.values() for b in trio.values())
    return {**trio, "lam": lam, "bias": {"keras": kb, "nnlab": float(nn.b[0]), "closed_form": cb},
            "max_abs_disagreement": worst, "agree": worst <= c.tolerance, "weight_norm": float(np.linalg.norm(cw)),
            "lr": safe_lr}


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run Stage 6; write its figures into ``out_dir``; return its :class:`Result`.

    ``jobs`` processes share the handout's run and the lambda sweep.
    """
    import_tensorflow()  # fail early, with the install hint, when TensorFlow is missing
    c = config
    out_dir = Path(out_dir)
    seed_everything(c.seed)
    X, y = credit_table()
    Xn, mu, sigma = standardize_features(X)
    done = run_calls([(_handout_run, (c, Xn, y, mu, sigma))] + [(_three_way, (c, lam, Xn, y)) for lam in c.lams],
                     jobs)
    h = done[0]
    sweep = {f"{lam:g}": s for lam, s in zip(c.lams, done[1:])}
    main = sweep[f"{c.lam:g}"]
    W_std, init = h["W_std"], h["init"]
    twin_gap = float(np.max(np.abs(h["twin_W"] - W_std)))
    order = np.argsort(-np.abs(W_std))

    lams = np.array(c.lams, dtype=float)
    series = {}
    for j, name in enumerate(CREDIT_FEATURES):
        for who, style in (("keras", {"marker": "o", "ls": "none"}), ("nnlab", {"marker": "x", "ls": "none"}),
                           ("closed_form", {"ls": "-"})):
            series[f"{name} ({who.replace('_', ' ')})"] = (lams, [s[who][j] for s in sweep.values()],
                                                           {"color": f"C{j}", **style})
    figs = {
        "loss": plots.curves(out_dir / "stage6_loss.png", {"Keras: MSE + L2": h["losses"]},
                             f"Stage 6: Keras credit model with L2 (lam={c.lam:g})", ylabel="total loss", logy=True),
        "three_way": plots.bars(out_dir / "stage6_three_way.png", list(CREDIT_FEATURES),
                                {"Keras (converged)": main["keras"], "nnlab (converged)": main["nnlab"],
                                 "closed form": main["closed_form"], f"Keras, {c.epochs} epochs (handout)": W_std},
                                f"Stage 6: weights on standardized features (lam={c.lam:g})", ylabel="weight"),
        "lambda_sweep": plots.curves(out_dir / "stage6_lambda_sweep.png", series,
                                     "Stage 6: shrinkage in Keras, nnlab and closed form", xlabel="lambda (symlog)",
                                     ylabel="weight (standardized)", logx=True),
    }
    preds = h["predictions"]
    metrics = {
        "features": list(CREDIT_FEATURES), "W_std": W_std, "b_std": h["b_std"], "W_orig": h["W_orig"],
        "b_orig": h["b_orig"],
        "loss_first": h["losses"][0], "loss_final": h["losses"][-1],
        "ranking": [{"feature": CREDIT_FEATURES[k], "abs_weight": float(abs(W_std[k])),
                     "direction": "+" if W_std[k] >= 0 else "-"} for k in order],
        "predictions": preds, "keras_init": {"W": init[0].ravel(), "b": init[1]},
        "nnlab_twin": {"W_std": h["twin_W"], "b_std": h["twin_b"], "max_abs_gap_to_keras": twin_gap,
                       "loss_final": h["twin_loss_final"]},
        "compiled_loop_vs_fit": h["loop_gap"], "tolerance": c.tolerance, "sweep": sweep,
        "all_agree": all(s["agree"] for s in sweep.values()), "tensorflow": h["tensorflow"],
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
