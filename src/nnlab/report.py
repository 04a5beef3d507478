"""REPORT.md from the stages' results: every number templated, never typed.

``nnlab report`` runs every stage (or, with ``--reuse``, reads the ``metrics.json``
files an earlier ``nnlab run all`` left in the same folder), copies the figures to
``docs/figures/`` and writes ``REPORT.md``.  ``nnlab report --check`` does the same
in a temporary folder and fails if the committed REPORT.md differs, so a stale or
hand-edited number fails CI.  Only text is compared: PNG bytes depend on the
Matplotlib and FreeType versions, so the figures are regenerated but not checked.

Comparative words in the prose ("better", "larger") are computed from the numbers
too, so the text stays true if a number changes.
"""

from __future__ import annotations

import difflib
import json
import shutil
import tempfile
from pathlib import Path

ORDER = ("1", "2", "3", "4", "5", "accuracy", "6", "7", "ablation")
#: Where section templates live (the ablation's, for now; issue 11 moves every section there).
TEMPLATES = Path(__file__).parent / "report" / "templates"


def g(x, digits=4) -> str:
    """A number with ``digits`` significant digits (stable against last-bit noise)."""
    if isinstance(x, str):
        return x
    if x is None:
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def pct(x, digits=2) -> str:
    """A fraction as a percentage."""
    return f"{100 * float(x):.{digits}f}%"


def _fig(figs_rel: str, sid: str, result: dict, key: str, caption: str) -> str:
    name = result["figures"].get(key)
    return f"![{caption}]({figs_rel}/stage{sid}/{name})\n\n*{caption}*\n" if name else ""


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _nnlab_first(table: dict):
    """Table rows with nnlab's first, then the rest in their stored order."""
    return sorted(table.items(), key=lambda kv: not kv[0].startswith("nnlab"))


def stage1(r, F) -> str:
    m = r["metrics"]
    nz = m["near_zero"]
    sweep_rows = [(lr, g(s["final_loss"]), "yes" if s["diverged"] else "no") for lr, s in m["sweep"].items()]
    eig = m["curvature"]["eigenvalues"]
    return f"""## Stage 1 — a line fitted by gradient descent

**What and why.** The simplest learner: two numbers `w, b`, a prediction `w x + b`, the mean
squared error as the measure of wrongness, and gradient descent moving both numbers against the
gradient of that error. Here the line is an nnlab `Linear(1, 1)` trained by the library's one
training loop, started from the handout's `np.random.randn()` draws (seed {r['config']['seed']}),
so the numbers are the handout's.

{_table(["quantity", "value"], [
    ("learned w (true 2.5)", g(m["w"])), ("learned b (true -0.7)", g(m["b"])),
    ("least-squares optimum w, b (the best any line can do on this sample)", f"{g(m['w_ols'])}, {g(m['b_ols'])}"),
    ("MSE at step 1 -> step 800", f"{g(m['loss_first'])} -> {g(m['loss_final'])}"),
    ("MSE of the least-squares line", g(m["mse_ols"])),
])}
{_fig(F, "1", r, "loss", "MSE over steps (log scale); the dashed line is the least-squares optimum")}
{_fig(F, "1", r, "fit", "The learned line against the data and the true line")}
### Checkpoint: why does the MSE decrease? What would a much larger learning rate do?

The MSE of a line is a bowl-shaped (convex quadratic) function of `(w, b)`. Its gradient points
uphill, so a small step against it lowers the loss; the steps shrink as the gradient shrinks near
the bottom, which is why the curve flattens: the final MSE {g(m['loss_final'])} equals the
least-squares optimum {g(m['mse_ols'])}, the floor set by the noise (its variance is
0.25² = 0.0625; the best line through a finite sample absorbs a little of it, hence slightly less).

A step that is too large overshoots the bottom of the bowl and lands higher on the other side,
and each step makes it worse. How large is too large follows from the curvature: the Hessian of
this loss is `2 [[mean x², mean x], [mean x, 1]]` with eigenvalues {g(eig[0])} and {g(eig[1])},
and gradient descent on a quadratic converges exactly when `lr < 2 / λ_max` =
**{g(m['lr_critical_theory'])}**. Bisection on the real training run puts the edge at
**{g(m['lr_critical_measured'])}**: theory and measurement agree.

{_table(["learning rate", "MSE after 800 steps", "diverged"], sweep_rows)}
{_fig(F, "1", r, "lr_sweep", "Learning-rate sweep: above 2/λ_max the loss grows geometrically")}
### Checkpoint: if x were all near zero, which parameter would be easier to learn?

**b.** The gradient for `w` is `2 mean(err · x)`: with every `x` near zero it is near zero whatever
the error, so `w` barely moves. The gradient for `b`, `2 mean(err)`, does not depend on `x` at all.
In curvature terms, the bowl is {g(nz['curvature_b'])} steep along `b` but only
{g(nz['curvature_w'])} along `w`, so at lr {r['config']['lr']} `w` would need about
{g(nz['steps_to_learn_w'], 2)} steps to converge. Measured with x squeezed into
[{g(nz['x_range'][0])}, {g(nz['x_range'][1])}] (same noise, same start): after 800 steps `b` has
covered {pct(nz['b_progress'], 1)} of the way to its optimum and `w` only {pct(nz['w_progress'], 1)}.
With the normal x in [-2, 2] both get there ({pct(m['normal']['w_progress'], 1)} and
{pct(m['normal']['b_progress'], 1)}).

{_fig(F, "1", r, "near_zero", "w and b over the steps, normal x against near-zero x")}
"""


def stage2(r, F, s1) -> str:
    m = r["metrics"]
    fd = m["finite_difference"]
    rows = [(k, f"{v:.1e}") for k, v in fd["errors"].items()]
    return f"""## Stage 2 — two stacked Linear layers

**What and why.** `Linear(1, 4)` then `Linear(4, 1)`, no activation, trained with MSE and plain
gradient descent (lr {r['config']['lr']}, {r['config']['epochs']} epochs) on a fresh draw of the
Stage 1 data. Each layer's `backward` receives dLoss/dOutput and returns dLoss/dInput — the chain
rule as code.

### Checkpoint: does the loss decrease steadily?

Yes: from {g(m['loss_first'])} to {g(m['loss_final'])} (least-squares optimum on this draw:
{g(m['mse_ols'])}). The test suite also runs the handout's Stage 2 code verbatim against `nnlab`
and asserts the loss falls monotonically after the first 50 epochs.

{_fig(F, "2", r, "loss", "Two-layer linear network: MSE per epoch")}
### Checkpoint: finite-difference check of `lin1.backward` and `lin2.backward` on 3 points

On the rows {m['check_rows']} of the data, every analytic gradient was compared with central
differences `(L(θ+h) − L(θ−h)) / 2h`, h = 1e-6, in float64. Relative error
`‖a − n‖ / (‖a‖ + ‖n‖)`:

{_table(["gradient", "relative error"], rows)}
The largest, {fd['max_error']:.1e}, is at the level of float64 rounding amplified by `1/h`
(errors from a wrong formula are of order 1). The same check runs in the test suite on every
module and loss for random shapes, and against PyTorch autograd.

### Checkpoint: why is a stack of linear layers still linear?

`lin2(lin1(x)) = W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`: a product of matrices is a
matrix, so the stack is one `Linear` with `W = W2 @ W1` and `b = W2 @ b1 + b2`. Measured: the
trained net collapses to **w = {g(m['w_collapsed'])}, b = {g(m['b_collapsed'])}**, whose predictions
differ from the network's by at most {m['collapse_max_abs_gap']:.1e} (rounding). It is the
least-squares line of this data ({g(m['w_ols'])}, {g(m['b_ols'])}) — the same line Stage 1's
estimator converges to (Stage 1's own sample gave {g(s1['w'])}, {g(s1['b'])}; the two stages draw
different noise). Depth without a nonlinearity adds parameters, not expressive power.

{_fig(F, "2", r, "fit", "The 1-4-1 linear network is one straight line")}
"""


def stage3(r, F) -> str:
    m = r["metrics"]
    c = r["config"]
    relu, tanh = m["runs"]["relu"], m["runs"]["tanh"]
    short, long_ = c["epochs"], c["long_epochs"]
    better_short = "ReLU" if relu["truth_mse_short"] < tanh["truth_mse_short"] else "tanh"
    better_long = "ReLU" if relu["truth_mse_long"] < tanh["truth_mse_long"] else "tanh"
    rows = [(name, g(v["train_mse_short"]), g(v["truth_mse_short"]), g(v["train_mse_long"]), g(v["truth_mse_long"]))
            for name, v in (("ReLU", relu), ("tanh", tanh))]
    gap = max(abs(v["train_mse_long"] - v["truth_mse_long"]) for v in (relu, tanh))
    return f"""## Stage 3 — a nonlinear MLP on a sine

**What and why.** `MLP(1, {c['hidden']}, 1)` on 400 points of `sin(2πx) + 0.1·noise`, plain
full-batch gradient descent, lr {c['lr']}. A line cannot bend; one hidden layer of ReLU or tanh
units can, because each unit contributes a kink (ReLU) or a smooth step (tanh) that the output
layer adds up. Both activations start from the *same* initial weights and see the same data. Bias
and variance are measured separately: the error against the noisy training targets, and the
error against the noise-free sine on a fine grid (the noise floor is 0.1² = {g(m['noise_floor'])}).

{_table(["activation", f"train MSE, {short} ep", f"MSE vs true sine, {short} ep",
         f"train MSE, {long_} ep", f"MSE vs true sine, {long_} ep"], rows)}
{_fig(F, "3", r, "loss", f"MSE over {long_} epochs for both activations (log scale)")}
{_fig(F, "3", r, "fit_short", f"Predictions against ground truth after {short} epochs")}
{_fig(F, "3", r, "fit_long", f"Predictions against ground truth after {long_} epochs")}
### Checkpoint: ReLU or tanh — which fits better here, and why (bias/variance)?

With the handout's settings **{better_short}** fits better after {short} epochs and
**{better_long}** after {long_}. Both are far above the noise floor and the training error
equals the error against the true function (they differ by at most {g(gap)}): this is
**high bias, not variance** — the models underfit; nothing here is memorising noise. The cause
is optimisation, not capacity: 32 units could draw the sine, but with Glorot-initialised weights
and lr {c['lr']} the hidden units start nearly linear around 0 and gradient descent bends them
slowly. ReLU units start learning kinks immediately (their gradient is 0 or 1); tanh units sit in
their near-linear middle, where the network computes almost a straight line: tanh's error
against the sine after {long_} epochs, {g(tanh['truth_mse_long'])}, is close to that of the best
straight line through the sine, {g(m['line_mse'])}.

### Checkpoint: 1,500 → 15,000 epochs — what happens, and why?

Training longer keeps lowering the loss because gradient descent has not converged: ReLU's train
MSE goes {g(relu['train_mse_short'])} → {g(relu['train_mse_long'])}, tanh's
{g(tanh['train_mse_short'])} → {g(tanh['train_mse_long'])}. The error against the true sine
falls in step, so the extra epochs reduce bias; no overfitting appears on this budget (with 400
points and {3 * c['hidden'] + 1} parameters, memorising the noise would need far more training). The fits above
show it: after {long_} epochs the ReLU net follows the sine with a few straight pieces.

### Checkpoint: predictions against ground truth

The two fit plots above draw the data, the true sine and both networks' predictions.
"""


def stage4(r, F) -> str:
    m = r["metrics"]
    c = r["config"]
    names = ("utilization", "age", "late_payments")
    rank = " > ".join(x["feature"] for x in m["ranking"])
    top = m["ranking"][0]
    cf = m["closed_form"]["W_std"]
    conv = m["converged"]
    weight_rows = [(n, g(m["W_std"][i]), g(cf[i]), g(m["W_orig"][i])) for i, n in enumerate(names)]
    weight_rows.append(("bias", g(m["b_std"]), g(m["closed_form"]["b_std"]), g(m["b_orig"])))
    sweep_rows = [(lam, *(g(w) for w in s["W_std"]), g(s["weight_norm"]), g(s["fit_mse"]), g(s["closed_form_fit_mse"]))
                  for lam, s in m["sweep"].items()]
    A, B = m["predictions"]["A"], m["predictions"]["B"]
    pw, pb = m["printed_W_orig"], m["printed_b_orig"]
    cf_rank = sorted(range(3), key=lambda i: -abs(cf[i]))
    cf_rank_text = " > ".join(names[i] for i in cf_rank)
    same_rank = cf_rank_text == rank
    corr = m["feature_correlation"]
    norms = [s["weight_norm"] for s in m["sweep"].values()]
    fits = [s["closed_form_fit_mse"] for s in m["sweep"].values()]
    return f"""## Stage 4 — the credit-score model and what its weights say

**What and why.** Five people, three features (credit utilisation, age, late payments), a score.
Features are standardised (mean 0, std 1) so that weights are comparable; a `Linear(3, 1)` is
trained on `MSE + λ Σ W²` (λ = {c['lam']}, the handout's L2; biases are not penalised) with lr
{c['lr']} for {c['epochs']} epochs.

{_table(["weight", f"gradient descent, {c['epochs']} epochs", "closed form (exact minimum)",
         "original units (GD)"], weight_rows)}
The closed form solves the same loss exactly: the bias decouples (`b = mean(y)` because the
standardised columns have mean 0) and `(XᵀX/n + λI) w = Xᵀ(y − ȳ)/n`. After {c['epochs']}
epochs gradient descent is **not** at that minimum (max gap {g(m['gap_to_closed_form'])}): the
features are strongly correlated (utilisation–late payments r = {g(corr[0][2], 3)},
age–late payments r = {g(corr[1][2], 3)}), which makes one direction of the loss almost flat
(Hessian eigenvalues {", ".join(g(e, 3) for e in m['hessian_eigenvalues'])}). Along it each epoch
removes only {pct(1 - m['slow_mode_rate_per_epoch'], 3)} of the remaining error, so
{pct(m['slow_mode_left_after_epochs'], 0)} of it is still there after {c['epochs']} epochs.
Trained on with the largest safe step (lr = 1/λ_max) for {conv['epochs']} epochs, the same code
reaches the closed form to **{conv['gap_to_closed_form']:.1e}**.

{_fig(F, "4", r, "loss", "Total loss (MSE + L2) per epoch")}
{_fig(F, "4", r, "weights", "Weights on standardised features: after 1,000 epochs and at the exact minimum")}
### Checkpoint: which features carry the largest weights, and what does the sign say?

By |weight| on standardised features (one standard deviation of each feature):
**{rank}**; the largest is {top['feature']} ({top['direction']}). Age has a positive weight
(older applicants score higher in this table); utilisation and late payments negative (more of
either lowers the score), as one would expect. One caution the numbers force: at the exact
minimum the ranking is {cf_rank_text}{" — the same" if same_rank else " — different from the 1,000-epoch one"}.
Utilisation and late payments move together in these five people, so the data cannot say
which of the two matters more; the split of weight between them is what L2 and the
optimiser's starting point decide. With five rows, no ranking here is evidence about real
credit scoring.

### Checkpoint: how does increasing λ affect the weights and the fit?

{_table(["λ", "w utilization", "w age", "w late", "‖w‖", f"MSE (GD, {c['epochs']} ep)", "MSE (exact)"], sweep_rows)}
Larger λ shrinks the weights toward 0 (‖w‖ at the exact minimum goes
{g(norms[0])} → {g(norms[-1])} as λ goes 0 → {list(m['sweep'])[-1]}) and the fit worsens
(exact-minimum MSE {g(fits[0])} → {g(fits[-1])}): more bias, less variance. With five points and
three features an unregularised fit can chase noise (overfitting risk is high); a small λ trades
a little training error for weights that change less when one person is added or removed.
At λ = 10 the model is close to predicting the mean for everyone.

{_fig(F, "4", r, "lambda_weights", "Each weight against λ (dots: 1,000 epochs of GD; dashed: exact minimum)")}
{_fig(F, "4", r, "lambda_fit", "Fit (MSE) against λ")}
### Checkpoint: by hand — the scores of [0.30, 21, 0] and [0.30, 65, 0]

With the weights in original units as printed (6 decimals):
score = {g(pb, 8)} + ({g(pw[0], 8)})·utilisation + ({g(pw[1], 8)})·age + ({g(pw[2], 8)})·late.

{_table(["person", "features", "by hand", "model (standardise, then forward)"], [
    ("A", A["features"], f"{A['by_hand']:.2f}", f"{A['model']:.2f}"),
    ("B", B["features"], f"{B['by_hand']:.2f}", f"{B['model']:.2f}"),
])}
The two people differ only in age (44 years), so the difference
{B['by_hand'] - A['by_hand']:.2f} is 44 × the age weight {g(pw[1])} points per year. The model
has learned "older ⇒ higher score" from five rows whose ages run from 22 to 52 only: 65 is an
extrapolation, and a linear model extrapolates linearly without limit. The number is what the
fitted line says, not a credit judgement.
"""


def stage5(r, F) -> str:
    m = r["metrics"]
    c = r["config"]
    h, ho, mn = m["handout"], m["held_out"], m.get("mnist")
    sw = m["sweeps"]
    ordered = sorted(sw.items(), key=lambda kv: (kv[1]["kind"], kv[1]["value"]))
    h_rows = [(k, pct(v["val_acc_final"]), pct(v["val_acc_best"]), g(v["train_loss_final"]),
               v["epochs_to_95"] or "never") for k, v in ordered]
    hs = [v for v in sw.values() if v["kind"] == "H"]
    top_acc = max(v["val_acc_final"] for v in hs)
    best_hs = " and ".join(str(v["value"]) for v in sorted(hs, key=lambda v: v["value"])
                           if v["val_acc_final"] == top_acc)
    lrs = {v["value"]: v for v in sw.values() if v["kind"] == "lr"}
    lo_lr, hi_lr = min(lrs), max(lrs)
    mc = ho["most_confused"]
    mnist_text = ""
    if mn:
        mnist_text = f"""### Real MNIST

The same classifier (H = {c['hidden']}, lr {c['lr']}, batch {c['batch']}, plain SGD) on
{mn['n_images']} real 28×28 MNIST images ({mn['source']}), pixels scaled to [0, 1], trained
{mn['epochs']} epochs on the same kind of split: **test accuracy {pct(mn['test_acc'])}**
(training {pct(mn['train_acc'])}). Real handwriting at 784 pixels is harder than the 8×8 digits.

{_fig(F, "5", r, "mnist_curves", "Real MNIST: validation accuracy per epoch")}
{_fig(F, "5", r, "mnist_confusion", "Real MNIST: test confusion matrix")}
"""
    return f"""## Stage 5 — softmax, cross-entropy and minibatches on digit images

**What and why.** A `Linear → ReLU → Linear` network outputs 10 scores (logits); softmax turns
them into probabilities; cross-entropy charges `−log p(true class)`; minibatch SGD (batch
{c['batch']}, lr {c['lr']}) updates after every {c['batch']} images instead of after the whole set.

**Two slips in the handout's set-up, measured rather than guessed.** Its "MNIST" is
scikit-learn's 8×8 digits ({h['rows_total']} images, not 20,000), and its "accuracy" is computed
on `X[:2000]`, i.e. on all {h['rows_evaluated']} *training* images. Run as written, it reports
**{pct(h['final_acc_on_training_data'])}** — a memorisation score. Evaluated properly (stratified
split: {ho['split_sizes']['train']} train / {ho['split_sizes']['validation']} validation /
{ho['split_sizes']['test']} test, test looked at once): training accuracy {pct(ho['train_acc'])},
validation {pct(ho['val_acc_final'])}, **test {pct(ho['test_acc'])}**.

{_fig(F, "5", r, "handout_loss", "The handout's run: cross-entropy per minibatch step")}
{_fig(F, "5", r, "handout_acc", "The handout's run: 'accuracy' per epoch, measured on training data")}
{_fig(F, "5", r, "digits_curves", "Held-out evaluation: validation accuracy per epoch")}
{_fig(F, "5", r, "digits_loss", "Held-out evaluation: training and validation loss per epoch")}
{_fig(F, "5", r, "digits_confusion", "Test confusion matrix")}
The most frequent confusion is a true {mc['true']} read as {mc['predicted']} ({mc['count']}
times); the weakest class is {ho['worst_class']}.

{_fig(F, "5", r, "digits_mistakes", "Misclassified test images")}
### Checkpoint: derive the fused gradient of softmax + cross-entropy

For one example with logits `z`, probabilities `p_i = e^{{z_i}} / Σ_j e^{{z_j}}` and one-hot `y`,
the loss is `L = −Σ_k y_k log p_k`. The softmax Jacobian is `∂p_k/∂z_i = p_k (δ_ki − p_i)`. So

`∂L/∂z_i = −Σ_k y_k (1/p_k) p_k (δ_ki − p_i) = −Σ_k y_k δ_ki + p_i Σ_k y_k = −y_i + p_i`,

using `Σ_k y_k = 1`. Averaged over a batch of B rows, `∂L/∂Z = (P − Y) / B` — exactly
`softmax_cross_entropy_backward`. The `1/p` of the logarithm cancels the `p` of the softmax, so
the fused form is cheaper and never divides by a tiny probability. The test suite checks it
against finite differences of `cross_entropy(softmax(z))` and against PyTorch.

### Checkpoint: different H and learning rates — how do the curves change?

Same split and seed, {c['epochs']} epochs each:

{_table(["run", "final val. accuracy", "best val. accuracy", "final train loss", "epochs to 95% val."], h_rows)}
Width: every H reaches a near-zero training loss (the digits are easy to memorise); the best
final validation accuracy, {pct(top_acc)}, comes with H = {best_hs}, and
wider layers drive the training loss lower. Learning rate: lr {lo_lr} learns slowest (train loss
{g(lrs[lo_lr]['train_loss_final'])} after {c['epochs']} epochs), lr {hi_lr} fastest
({g(lrs[hi_lr]['train_loss_final'])}) with noisier curves — with raw 0–16 pixel values a large
step makes each minibatch move the weights a lot.

{_fig(F, "5", r, "sweep_H_acc", "Validation accuracy for H = 32, 64, 128")}
{_fig(F, "5", r, "sweep_lr_acc", "Validation accuracy for three learning rates")}
{_fig(F, "5", r, "sweep_lr_loss", "Training loss for three learning rates")}
{mnist_text}"""


def accuracy_section(r, F) -> str:
    out = ["## Stage 5 — how accurate can nnlab get? (5 seeded splits against scikit-learn)\n",
           "nnlab's recipe is chosen on validation data only (training part of seed 0's split, 70 % / 10 %), "
           "then trained on each of 5 stratified 80/20 splits and tested once per split. scikit-learn's "
           "`MLPClassifier()` (defaults) and `LogisticRegression` train on the identical rows. Pixels are scaled "
           "to [0, 1] for every model.\n"]
    for name, m in r["metrics"].items():
        rows = [(k, pct(s["mean"]), pct(s["std"]), pct(s["min"]), pct(s["max"])) for k, s in _nnlab_first(m["table"])]
        sel = [(s["recipe"], pct(s["val_acc"])) for s in m["selection"]]
        nn = m["table"]["nnlab (chosen recipe)"]["mean"]
        verdict = "meets" if m["meets_target"] else "misses"
        beats = {True: "beats", False: "does not beat", None: "was not compared with"}[m["beats_mlpclassifier"]]
        out.append(f"""### {name} ({m['n_images']} images, test split {m['test_size']})

Candidates and their validation accuracy: {"; ".join(f"{a} → {b}" for a, b in sel)}.
Chosen: **{m['chosen']}**.

{_table(["model", "mean test accuracy", "std", "min", "max"], rows)}
nnlab's {pct(nn)} {verdict} the target of {pct(m['target'], 1)} and {beats} MLPClassifier on the same splits.

{_fig(F, "accuracy", r, name, f"{name}: test accuracy on each split")}""")
    return "\n".join(out) + "\n"


def stage6(r, F) -> str:
    m = r["metrics"]
    c = r["config"]
    names = ("utilization", "age", "late_payments")
    rows = [(lam, g(s["max_abs_disagreement"], 2), "yes" if s["agree"] else "NO",
             ", ".join(g(w) for w in s["keras"]), ", ".join(g(w) for w in s["closed_form"]))
            for lam, s in m["sweep"].items()]
    A, B = m["predictions"]["A"], m["predictions"]["B"]
    w_rows = [(n, g(m["W_std"][i]), g(m["W_orig"][i])) for i, n in enumerate(names)]
    return f"""## Stage 6 — the credit model in TensorFlow/Keras

**What and why.** The handout's Keras programme: `Dense(1)` with `kernel_regularizer=L2({c['lam']})`
(Keras's L2 adds `λ Σ W²`, the same penalty as Stage 4), SGD lr {c['lr']}, MSE,
{c['epochs']} epochs through `model.fit`, TensorFlow {m['tensorflow']}.

{_table(["feature", "Keras weight (standardised)", "original units"], w_rows)}
Ranking: {" > ".join(x['feature'] for x in m['ranking'])}. Predictions: person A
{A['features']} → {A['model']:.2f} by the model, {A['closed_form']:.2f} from the original-unit
weights; person B {B['features']} → {B['model']:.2f} / {B['closed_form']:.2f}.

{_fig(F, "6", r, "loss", "Keras: total loss (MSE + L2) per epoch")}
**Cross-checks, all computed.**
- *Same arithmetic.* nnlab's `Linear(3, 1)` in float32, started from Keras's initial weights and
  trained with the same lr, λ and epochs, ends within **{m['nnlab_twin']['max_abs_gap_to_keras']:.1e}**
  of Keras's weights: the two implement the same update.
- *Same optimum, three ways.* Keras and nnlab trained to convergence and the closed-form ridge
  solution agree within the stated tolerance {c['tolerance']} at every λ
  (all agree: **{m['all_agree']}**); the λ sweep shows the same shrinkage in all three.

{_table(["λ", "max disagreement", f"within {c['tolerance']}", "Keras weights", "closed-form weights"], rows)}
{_fig(F, "6", r, "three_way", "Weights: Keras, nnlab (converged), closed form, and the handout's 1,000-epoch run")}
{_fig(F, "6", r, "lambda_sweep", "Shrinkage with λ in Keras (o), nnlab (x) and closed form (line)")}
**Speed.** `model.fit` pays Keras's per-epoch bookkeeping (callbacks, logs, a fresh data pass) on
every one of the handout's {c['epochs']} epochs, which for five rows costs far more than the
arithmetic; the stage's run time is printed by `nnlab run 6`. The convergence runs therefore use the same Keras
model and optimizer in a compiled `tf.function` loop; from the same start and for the same number
of steps it lands within {m['compiled_loop_vs_fit']:.1e} of `model.fit`.
"""


def stage7(r, F) -> str:
    m = r["metrics"]
    c = r["config"]
    d = m["data"]
    head = m["headline"]
    metric_names = list(next(iter(m["table"].values())).keys())
    rows = [(name, *(f"{v[k][0]:.4f} [{v[k][1]:.4f}, {v[k][2]:.4f}]" if k in v else "n/a" for k in metric_names))
            for name, v in _nnlab_first(m["table"])]
    search_rows = [(i + 1, s["recipe"], g(s["cv_loss"])) for i, s in enumerate(m["search"])]
    nn = m["table"]["nnlab MLP (chosen by CV)"][head][0]
    sk = next((v[head][0] for k, v in m["table"].items() if "MLP" in k and "nnlab" not in k), None)
    best_name, best = max(((k, v[head][0]) for k, v in m["table"].items()),
                          key=lambda kv: kv[1] if head != "rmse" else -kv[1])
    cmp = "matches or beats" if sk is not None and (nn >= sk if head != "rmse" else nn <= sk) else "does not beat"
    counts = d.get("class_counts") or []
    return f"""## Stage 7 — our own network on a real data set

**The data.** {d['source']}: {d['rows']} rows, {d['features']} features, a {d['task']} task
(classes {", ".join(f"{n}: {k}" for n, k in zip(d['classes'], counts))}). The Breast Cancer
Wisconsin (Diagnostic) set holds 30 measurements of cell nuclei (radius, texture, concavity, …;
mean, standard error and worst value of each) computed from digitised images of breast-mass
biopsies, each labelled malignant or benign. It was chosen because it is real clinical data that
ships with scikit-learn (nothing to download), it is small enough to search hyper-parameters by
cross-validation in seconds, and being binary it supports ROC-AUC next to accuracy. The same
pipeline runs on any CSV: `nnlab run 7 --csv FILE --target COLUMN`.

**How the data were split.** Stratified by class and fixed by seed {c['seed']}: 20 % test
({m['split']['test']} rows), set aside first and used exactly once; the rest split 80/20 into
training ({m['split']['train']}) and validation ({m['split']['validation']}). Every model is
standardised with statistics of its own training rows only (no leakage through the scaler).

**How the hyper-parameters were chosen.** {len(m['search'])} random recipes from a grid of depth
(1–2 hidden layers), width (16–128), activation (ReLU/tanh), optimizer (Adam or SGD with
momentum 0.9), learning rate, L2 strength and batch size, each scored by
{c['folds']}-fold stratified cross-validation on the non-test rows (mean validation
cross-entropy; every fold early-stopped on an inner split of its own training rows). A test
asserts that no test row ever reaches the search.

{_table(["rank", "recipe", "CV loss"], search_rows)}
**Layers and neurons.** The winner: **{m['chosen']}**. It was retrained on the training rows with
early stopping on validation loss (patience {c['patience']}): it ran
{m['final_training']['epochs_run']} epochs and kept epoch {m['final_training']['best_epoch']}.

{_fig(F, "7", r, "learning_curves", "Learning curves of the chosen recipe (training and validation loss)")}
{_fig(F, "7", r, "search", "Cross-validation loss of every candidate, fold by fold")}
**Results on the test rows** (point estimate and 95 % bootstrap interval over
{c['n_boot']} resamples of the test rows; baselines trained on the identical rows):

{_table(["model", *metric_names], rows)}
nnlab's MLP {cmp} scikit-learn's MLP here ({head} {nn:.4f} against {g(sk) if sk is not None else 'n/a'}).
The best {head} belongs to **{best_name}** ({best:.4f}). A linear model doing this well says the
two classes are nearly linearly separable in the standardised features, so a hidden layer has
little to add; and with {m['split']['test']} test rows the intervals of the top models overlap:
their differences are within the noise of the test set.

{_fig(F, "7", r, "confusion", "Test confusion matrix of nnlab's MLP")}
"""


def _render_template(name: str, values: dict, figures_rel: str, sid: str, figures: dict) -> str:
    """Render ``templates/<name>.md.j2`` (Jinja2, strict about undefined values) with ``values``.

    The filters (``pct``, ``points``, ``fixed``, ``num``, ``g``) and ``table``/``fig`` carry the
    names of issue 11's renderer, so the template moves over unchanged when that lands.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(pct=pct, g=g, points=lambda x, d=2: f"{100 * float(x):.{d}f} percentage points",
                       fixed=lambda x, d=2: f"{float(x):.{d}f}", num=lambda x: f"{float(x):g}")

    def fig(key, caption):
        return _fig(figures_rel, sid, {"figures": figures}, key, caption)

    def table(header, rows, formats=None):
        return _table(header, rows)

    return env.get_template(f"{name}.md.j2").render(**values, fig=fig, table=table)


def _choices(row: dict) -> str:
    """What a row chose in each split, e.g. ``"dropout 0.1 in 3 splits, 0.3 in 2"``."""
    if not row["tuned"]:
        return ""
    parts = []
    for name in row["tuned"]:
        picked = [choice[name] for choice in row["chosen"]]
        counts = [(v, picked.count(v)) for v in row["tuned"][name] if v in picked]
        parts.append(f"{name} " + ", ".join(f"{v:g} in {n} split{'s' if n != 1 else ''}" for v, n in counts))
    return "; ".join(parts)


def _value(v) -> str:
    """A setting as the ablation table writes it: ``(256, 256)`` as ``256-256``, numbers compactly."""
    if isinstance(v, list):
        return "-".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return "none" if v is None else str(v)


def _recipe_change(row: dict) -> str:
    """``"optimizer sgd → adam; lr 0.01 → 0.001"``; a tuned setting reads ``"dropout 0 → chosen"``."""
    return "; ".join(f"{c['field']} {_value(c['before'])} → {'chosen' if c['after'] is None else _value(c['after'])}"
                     for c in row["changes"]) or "—"


def ablation_context(result: dict, docs: Path) -> dict:
    """The ablation template's values: each dataset's rows, formatted cells, and the times file if present."""
    c = result["config"]
    times_path = Path(docs) / "ablation_times.json"
    measured = json.loads(times_path.read_text()) if times_path.exists() else None
    stale = measured is not None and measured.get("config") != c  # times of another configuration are not these
    if stale:
        measured = None
    datasets = []
    for name, m in result["metrics"].items():
        cpu = (measured or {}).get("cpu_seconds", {}).get(name, {})
        rows, cells = [], []
        for r in m["rows"]:
            finals = cpu.get(r["key"], {}).get("final")
            seconds = f"{sum(finals) / len(finals):.2f}" if finals else "n/a"
            change = r["change"]
            delta = "—" if change is None else f"{100 * change['mean']:+.2f} ± {100 * change['se']:.2f} pts"
            tuned = _choices(r)
            cells.append((r["key"], r["label"], _recipe_change(r), tuned or "—", pct(r["test_accuracy"]["mean"]),
                          pct(r["test_accuracy"]["std"]), delta, f"{r['work_gmac']:.1f}", seconds))
            rows.append({"key": r["key"], "label": r["label"], "acc": r["test_accuracy"], "change": change,
                         "tuned": tuned})
        datasets.append({"name": name, "m": m, "rows": rows, "table": cells, "scale": m["pixel_scale"],
                         "first_epochs": m["rows"][0]["epochs"], "last_epochs": m["rows"][-1]["epochs"]})
    first = next(iter(result["metrics"].values()))
    cpu_total = sum(r["total"] for d in (measured or {}).get("cpu_seconds", {}).values() for r in d.values())
    return {"c": c, "datasets": datasets, "splits": first["splits"], "base": first["base"],
            "work_passes": first["work_passes"],
            "t_critical": first["rows"][1]["change"]["t_critical"], "level": first["rows"][1]["change"]["level"],
            "times": {"file": "docs/ablation_times.json", "found": measured is not None, "stale": stale,
                      "cpu_total": cpu_total,
                      **({"command": measured["command"], "wall": measured["wall_seconds"], "jobs": measured["jobs"],
                          "load_before": measured["load_average_before"]} if measured else {})}}


def ablation_section(r, F, docs) -> str:
    return _render_template("ablation", ablation_context(r, docs), F, "ablation", r["figures"])


def closing(results) -> str:
    return """## What each component buys

- **Depth without nonlinearity** buys nothing in expressiveness (Stage 2: the 1-4-1 net *is* a
  line), only more parameters and a harder optimisation.
- **Nonlinearity** is what lets a network bend (Stage 3: a ReLU net follows the sine that no line
  can); the activation also shapes optimisation — tanh units near 0 behave almost linearly and
  learn slowly from a small initialisation.
- **Regularisation** (L2) trades training fit for smaller, steadier weights (Stage 4: ‖w‖ and the
  fit both fall as λ grows); with correlated features it also decides how weight is shared
  between them.
- **Minibatching** makes each update cheap and lets the model see the data many times per epoch
  (Stage 5: 15 updates per epoch on 1,797 digits instead of one); the noise it adds shows in the
  loss-per-step curve.
- **Softmax + cross-entropy** turns scores into probabilities and gives the simple, stable
  gradient `(P − Y)/B` (derivation in Stage 5); a confident wrong answer is charged heavily.

## Slips in the handout, found while building this

- The NLL line in Stage 5.2 drops the minus sign: it writes the negative log-likelihood as
  `Σ log p`; it is `−Σ log p` (what `cross_entropy` computes).
- Stage 5 calls scikit-learn's 8×8 digits "MNIST", slices `X[:20000]` from 1,797 images, and
  measures "accuracy" on `X[:2000]`, the training data (Stage 5 above reports both).
- Stage 3's text says a ReLU passes gradient when the input is "not less than 0", while its
  code mask is `x > 0`; we follow the code: the derivative at exactly 0 is 0 (tested).
- Stage 4's 1,000 epochs at lr 0.01 stop well short of the minimum of its own loss (Stage 4 above).
- Stage 5.3's `probs_all, _ = model.forward(...)` names logits "probs"; the arg-max is the same,
  so the accuracy is unaffected.
"""


def render(results: dict, figures_rel: str, docs: Path) -> str:
    """REPORT.md text from the stage results (``metrics.json`` contents) and the docs tables."""
    F = figures_rel
    parts = ["""# nnlab — report

Every number, table and figure below was produced by `nnlab report` from a run of the code
(`make report`); seeds are fixed, and CI regenerates this file and fails if it differs.
Configurations are in each stage's `metrics.json`. The library is described in `README.md` and
`docs/design.pdf`.
"""]
    r = results
    sections = {"1": stage1, "2": lambda res, F: stage2(res, F, r["1"]["metrics"]), "3": stage3, "4": stage4,
                "5": stage5, "accuracy": accuracy_section, "6": stage6, "7": stage7,
                "ablation": lambda res, F: ablation_section(res, F, docs)}
    parts += [sections[sid](r[sid], F) for sid in ORDER if sid in r]
    bench = docs / "benchmarks.md"
    robust = docs / "robustness.md"
    parts.append("## Speed\n\nFrom `docs/benchmarks.md`, written by the benchmark command it names (timings vary "
                 "between runs, so the benchmark is run by hand, not by `nnlab report`):\n\n"
                 + (bench.read_text().split("\n", 2)[2] if bench.exists() else "(not run yet)\n"))
    parts.append("## Robustness\n\nFrom `docs/robustness.md`, generated and checked by the test suite:\n\n"
                 + ("| entry point" + robust.read_text().split("| entry point", 1)[1]
                    if robust.exists() else "(not generated yet)\n"))
    parts.append(closing(r))
    return "\n".join(parts)


def collect(out: Path, reuse: bool, progress: bool = False) -> dict:
    """Results of every stage: read from ``out`` when ``reuse`` and present, else run now."""
    from threadpoolctl import threadpool_limits

    from nnlab.stages import STAGES
    from nnlab.stages.common import write_metrics

    results = {}
    with threadpool_limits(1):
        for sid in ORDER:
            folder = out / f"stage{sid}"
            if not (reuse and (folder / "metrics.json").exists()):
                folder.mkdir(parents=True, exist_ok=True)
                module = STAGES[sid]
                try:
                    result = module.run(module.Config(), folder, progress=progress)
                except ImportError as exc:  # Stage 6 without TensorFlow
                    print(f"report: skipping stage {sid}: {exc}")
                    continue
                write_metrics(result, folder)
            results[sid] = json.loads((folder / "metrics.json").read_text())
    return results


def write(out: Path, report: Path, figures: Path, docs: Path, reuse: bool, progress: bool = False) -> str:
    """Run (or reuse) the stages, copy figures, write the report; returns its text."""
    results = collect(out, reuse, progress)
    for sid, res in results.items():
        dest = figures / f"stage{sid}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in res["figures"].values():
            shutil.copy2(out / f"stage{sid}" / name, dest / name)
    text = render(results, figures.as_posix(), docs)
    report.write_text(text)
    return text


def check(report: Path, figures: Path, docs: Path) -> int:
    """Regenerate in a temporary folder; 0 if ``report`` is identical, 1 with a diff otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        results = collect(Path(tmp), reuse=False)
    fresh = render(results, figures.as_posix(), docs)
    old = report.read_text() if report.exists() else ""
    if fresh == old:
        print(f"{report} is up to date")
        return 0
    diff = difflib.unified_diff(old.splitlines(), fresh.splitlines(), str(report), "regenerated", lineterm="", n=1)
    print("\n".join(list(diff)[:80]))
    print(f"\n{report} differs from a fresh run: run `nnlab report` and commit the result")
    return 1
