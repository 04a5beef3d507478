# %% [markdown]
# # Stage 4 — credit-score weights, with L2 regularisation
#
# The handout's table: a few people, three features (credit utilisation, age, late payments) and a
# credit score. A `Linear(3, 1)` learns the score from the standardised features, with the
# handout's L2 penalty `λ·ΣW²` added to the loss (on the weights, never the bias). Then the weights
# are read: which feature matters, in which direction, what λ does to them, and what the model says
# about two people it has never seen.

# %%
from nnlab.stages import stage4

config = stage4.Config().quick() if QUICK else stage4.Config()
OUT = FIGURES / "stage4"
names = nnlab.data.CREDIT_FEATURES
X, y = nnlab.data.credit_table()
Xn, mu, sigma = nnlab.standardize_features(X)  # every column: mean 0, standard deviation 1
print(config)
print("features", names, "X", X.shape, " y", y.shape)
print("column means after standardising", Xn.mean(axis=0).round(12), " std", Xn.std(axis=0).round(6))

# %% [markdown]
# ## Mini-check: the L2 term in the gradient
#
# On a random batch, run `backward` once, keep `dW`, run it again and add the penalty's gradient
# `2λW`. The difference of the two gradients must be exactly `2λW`, and the bias's gradient must not
# change. `nnlab.L2Penalty(λ).backward(params)` adds the same term to every weight it is given.

# %%
np.random.seed(3)
lin = nnlab.Linear(in_dim=3, out_dim=1)
Xr, yr, lam = np.random.randn(5, 3), np.random.randn(5, 1), 0.01
dy = 2 * (lin.forward(Xr) - yr) / len(Xr)
lin.backward(dy)
data_dw, data_db = lin.dW.copy(), lin.db.copy()
lin.backward(dy)                              # the same gradients again ...
nnlab.L2Penalty(lam).backward(lin.parameters())  # ... plus 2·lam·W on the weights only
for name, got, want in (("L2 part of dW", lin.dW - data_dw, 2 * lam * lin.W), ("db unchanged", lin.db, data_db)):
    nnlab.assert_close(name, got, want)

# %% [markdown]
# ## The loop with L2
#
# The handout's loop plus two lines: the penalty joins the loss, and its gradient joins `dW`.

# %%
nnlab.seed_everything(config.seed)
lin = nnlab.Linear(in_dim=3, out_dim=1)        # the handout's initial weights, after the seed
start = (lin.W.copy(), lin.b.copy())
losses = []
for epoch in range(config.epochs):
    yhat = lin.forward(Xn)                                             # forward: (5, 1)
    err = yhat - y
    losses.append(np.mean(err**2) + config.lam * np.sum(lin.W**2))     # loss: MSE + L2
    lin.backward(2 * err / len(Xn))                                    # backward: data part
    lin.dW += 2 * config.lam * lin.W                                   # ... plus the L2 part
    lin.W -= config.lr * lin.dW                                        # update
    lin.b -= config.lr * lin.db
print("weights on standardised features:", ", ".join(f"{n} {w:+.3f}" for n, w in zip(names, lin.W.ravel())),
      f"; bias {lin.b[0]:.3f}")
show(plots.curves(OUT / "loss.png", {"MSE + L2": losses}, f"Total loss per epoch (λ = {config.lam:g})",
                  ylabel="total loss", logy=True))

# %% [markdown]
# ## Gradient check of the regularised loss, and a slip
#
# `nnlab.numerical_gradient(f, W, h)` nudges each entry of `W` by ±h in place and returns the central
# differences of `f()`. Compared with `dW` (data part + `2λW`) at the trained weights, it agrees;
# with the penalty's gradient written `λW` (the 2 forgotten), it does not. (The loss is quadratic
# in `W`, and central differences of a quadratic are exact for any step, so a step larger than
# `gradcheck`'s default keeps floating-point rounding out of the comparison.)

# %%
def total_loss():
    return float(np.mean((lin.forward(Xn) - y) ** 2) + config.lam * np.sum(lin.W**2))


lin.backward(2 * (lin.forward(Xn) - y) / len(Xn))
data_grad = lin.dW.copy()
numeric = nnlab.numerical_gradient(total_loss, lin.W, h=1e-3)
print(f"2·lam·W: relative error {nnlab.rel_error(data_grad + 2 * config.lam * lin.W, numeric):.1e}")
print(f"  lam·W: relative error {nnlab.rel_error(data_grad + config.lam * lin.W, numeric):.1e}")

# %% [markdown]
# The first error is at rounding level; the second is large. Near the end of training the data's
# gradient and the penalty's nearly cancel, so a wrong penalty gradient is the *whole* remaining
# gradient there — a slip that would quietly move the weights somewhere else.
#
# ## Checkpoint: which features carry the largest weights? What does the sign say?
#
# On standardised features a weight is the score change per standard deviation of its feature, so
# magnitudes compare across features. Next to gradient descent's weights: the **exact minimum** of
# the same loss, in closed form (`stage4.ridge_closed_form`), and the features' correlations.

# %%
w_exact, b_exact = stage4.ridge_closed_form(Xn, y, config.lam)
w_gd = lin.W.ravel()
for label, w in (("gradient descent", w_gd), ("exact minimum", w_exact)):
    order = np.argsort(-np.abs(w))
    print(f"{label:>16}: " + " > ".join(f"{names[k]} ({w[k]:+.2f})" for k in order))
print(f"largest gap between the two: {np.max(np.abs(w_gd - w_exact)):.3g}")
print("correlations between features:\n", np.corrcoef(X.T).round(3))
show(plots.bars(OUT / "weights.png", list(names), {f"gradient descent, {config.epochs} epochs": w_gd,
                                                   "exact minimum": w_exact},
                f"Weights on standardised features (λ = {config.lam:g})", ylabel="weight"))

# %% [markdown]
# The cell prints the ranking by |weight|, with signs. A `+` says: more of this feature, the other
# two held fixed, raises the predicted score; a `−` lowers it. Two cautions come with it, both
# printed above. The gap line says how far the handout's epochs leave gradient descent from the
# exact minimum (so its ranking can differ from the minimum's). And utilisation and late payments
# are strongly correlated: the data can hardly tell their two weights apart, so their split is
# fragile. With this few people, no ranking here is evidence about credit scoring in general.
#
# ## Checkpoint: how does increasing λ affect the weights and the fit?
#
# For each λ of the sweep: the exact minimum (its weights, their norm, the training fit as MSE and
# as R² = 1 − MSE / var(y)), the norm of gradient descent's weights after the same epochs from the
# same start, and two leave-one-out numbers (`stage4.leave_one_out`): how far the exact weights move
# when each person in turn is left out (*variance*), and the left-out person's squared error.

# %%
sweep = {}
for lam in config.lams:
    gd = nnlab.Linear(3, 1)
    gd.W[...], gd.b[...] = start
    nnlab.fit(gd, nnlab.MSELoss(), nnlab.SGD(gd.parameters(), lr=config.lr), Xn, y, epochs=config.epochs,
              penalty=nnlab.L2Penalty(lam))
    w, b = stage4.ridge_closed_form(Xn, y, lam)
    mse = np.mean((Xn @ w + b - y.ravel()) ** 2)
    sweep[lam] = {"exact": w, "gd": gd.W.ravel().copy(), "mse": mse, "loo": stage4.leave_one_out(Xn, y, lam)}
print(f"{'λ':>5} {'exact weights':>26} {'‖w‖':>6} {'‖w‖ GD':>7} {'MSE':>7} {'R²':>6} {'LOO spread':>10} {'LOO MSE':>8}")
for lam, s in sweep.items():
    print(f"{lam:>5g} {np.array2string(s['exact'], precision=2):>26} {np.linalg.norm(s['exact']):>6.2f} "
          f"{np.linalg.norm(s['gd']):>7.2f} {s['mse']:>7.1f} {1 - s['mse'] / np.var(y):>6.3f} "
          f"{s['loo']['weight_spread']:>10.2f} {s['loo']['mse']:>8.1f}")
print("λ with the lowest leave-one-out error:", min(sweep, key=lambda lam: sweep[lam]["loo"]["mse"]))
lams = np.array(config.lams)
series = {}
for j, name in enumerate(names):
    series[f"{name} (exact)"] = (lams, [s["exact"][j] for s in sweep.values()], {"color": f"C{j}", "ls": "--"})
    series[f"{name} (GD)"] = (lams, [s["gd"][j] for s in sweep.values()], {"color": f"C{j}", "marker": "o", "ls": ""})
show(plots.curves(OUT / "lambda.png", series, "Weights against λ", xlabel="λ (symlog)", ylabel="weight", logx=True))

# %% [markdown]
# Read the columns left to right. As λ grows the norm of the weights falls and the training fit
# gets worse (MSE up, R² down): **more bias**. The leave-one-out spread falls: the weights depend
# less on which people happen to be in the data, **less variance**. The left-out person's
# error weighs the two, and the last line names the λ where it is lowest: too little λ overfits this
# handful of rows, too much ignores them. Single weights need not all shrink: with correlated features, L2
# first shrinks the direction in which they pull against each other, and one of them can grow.
#
# ## Checkpoint: by hand, the scores of the handout's two new people
#
# They are `stage4.PEOPLE`: the same utilisation and late payments, different ages (the cell prints
# both). Undo the standardisation (`unstandardize_linear_weights`): a weight per raw unit of each
# feature and a bias, so that a score is a sum anyone can do by hand.

# %%
W_orig, b_orig = nnlab.unstandardize_linear_weights(lin.W, lin.b, mu, sigma)
print(f"score = {b_orig:.4f} " + " ".join(f"+ ({w:.4f})·{n}" for w, n in zip(W_orig, names)))
scores = {}
for who, person in stage4.PEOPLE.items():
    scores[who] = b_orig + sum(w * v for w, v in zip(W_orig, person))
    model = lin.forward((np.array(person, dtype=float) - mu) / sigma).item()
    print(f"person {who} {person}: by hand {scores[who]:.2f}, the model {model:.2f}")
age = list(names).index("age")
years = stage4.PEOPLE["B"][age] - stage4.PEOPLE["A"][age]
print(f"B − A = {scores['B'] - scores['A']:.2f} = {years} years × {W_orig[age]:.4f} points per year")
print(f"ages in the training data: {X[:, age].min():g} to {X[:, age].max():g}")

# %% [markdown]
# The two people differ only in age, so their scores differ by the age gap times the age weight
# (the last but one line). Both ages lie outside the ages the model was trained on (the last line):
# the model is extrapolating, and a linear model extrapolates linearly without limit. The number is
# what the fitted line says, not a judgement about anyone's credit.
#
# **Try this:** gradient descent above stopped short of the exact minimum. Stage 1's bound applies
# here too: this loss is a bowl, and `lr < 2/λ_max` is safe. Set `factor` (the learning rate as a
# multiple of the bound) and watch the gap to the exact minimum; above 1 the run diverges.

# %%
factor = 0.5  # try 0.05, 0.9, 1.05
bound = stage4.stable_lr_bound(Xn, config.lam)
fast = nnlab.Linear(3, 1)
fast.W[...], fast.b[...] = start
history = nnlab.fit(fast, nnlab.MSELoss(), nnlab.SGD(fast.parameters(), lr=factor * bound), Xn, y,
                    epochs=config.epochs, penalty=nnlab.L2Penalty(config.lam))
print(f"bound {bound:.4f}; lr {factor * bound:.4f} (the handout's: {config.lr}); diverged: {history.diverged}")
print(f"gap to the exact minimum after {config.epochs} epochs: {np.max(np.abs(fast.W.ravel() - w_exact)):.3g}")
