# %% [markdown]
# # Stage 1 — fitting a line by gradient descent
#
# The smallest learner there is: two numbers `w` and `b`, a prediction `ŷ = w·x + b`, the mean
# squared error as the measure of how wrong it is, and gradient descent nudging both numbers
# downhill. Here the line is an `nnlab.Linear(1, 1)` layer, so the four steps every later stage
# repeats get their names: **forward**, **loss**, **backward**, **update**.
#
# The stage's settings (the handout's values) come from `nnlab.stages.stage1.Config`.

# %%
from nnlab.stages import stage1
from nnlab.stages.common import least_squares_line

config = stage1.Config().quick() if QUICK else stage1.Config()
OUT = FIGURES / "stage1"
print(config)

# %% [markdown]
# ## The data and the starting point
#
# Seeding NumPy's global generator first makes the noise and the two random starting values the
# handout's own. The layer wants one row per example, so `x` becomes a column `X` of shape (n, 1).

# %%
nnlab.seed_everything(config.seed)
x, y = nnlab.data.make_line(config.n, config.true_a, config.true_b, config.noise)
X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
w0, b0 = np.random.randn(), np.random.randn()  # the handout's draws: w first, then b
line = nnlab.Linear(1, 1)
line.W[0, 0], line.b[0] = w0, b0
print("X", X.shape, " Y", Y.shape, " W", line.W.shape, " b", line.b.shape)
print(f"start: w = {line.W[0, 0]:.4f}, b = {line.b[0]:.4f}")

# %% [markdown]
# ## One step, with its shapes
#
# `forward` computes `X @ W.T + b`. The loss is the MSE; its derivative with respect to each
# prediction is `2·err / n`. `backward` takes that and fills `dW` and `db`. The last line compares
# the layer's `dW` with the handout's formula `dw = 2·mean(err·x)`: they are the same number.

# %%
yhat = line.forward(X)                 # forward: (n, 1)
err = yhat - Y                         # residuals: (n, 1)
loss = nnlab.mse(yhat, Y)              # mean(err**2): a number
dyhat = 2 * err / len(X)               # dLoss/dyhat: (n, 1)
line.backward(dyhat)                   # fills line.dW (1, 1) and line.db (1,)
for name, value in [("yhat", yhat), ("err", err), ("dyhat", dyhat), ("dW", line.dW), ("db", line.db)]:
    print(f"{name:>6}: shape {value.shape}")
print(f"loss {loss:.4f}; dW from the layer {line.dW[0, 0]:.6f}, 2·mean(err·x) = {2 * np.mean(err.ravel() * x):.6f}")

# %% [markdown]
# ## The loop
#
# The same four steps, repeated. The update moves each parameter against its gradient, scaled by
# the learning rate.

# %%
losses = []
for step in range(config.epochs):
    yhat = line.forward(X)                     # forward
    losses.append(nnlab.mse(yhat, Y))          # loss
    line.backward(2 * (yhat - Y) / len(X))     # backward: dW, db
    line.W -= config.lr * line.dW              # update
    line.b -= config.lr * line.db
w_ls, b_ls, mse_ls = least_squares_line(x, y)  # the best line there is, solved directly
print(f"learned     w = {line.W[0, 0]:.4f}, b = {line.b[0]:.4f}  (true {config.true_a}, {config.true_b})")
print(f"least squ.  w = {w_ls:.4f}, b = {b_ls:.4f}")
print(f"MSE: step 1 {losses[0]:.4f} -> step {len(losses)} {losses[-1]:.5f}; least-squares MSE {mse_ls:.5f}")

# %%
show(plots.curves(OUT / "loss.png", {"MSE": losses}, "MSE over steps", xlabel="step", ylabel="MSE", logy=True,
                  hline=(mse_ls, "least-squares optimum")))
w, b = line.W[0, 0], line.b[0]
show(plots.fit(OUT / "fit.png", x, y, {f"learned: {w:.3f} x {b:+.3f}": w * x + b}, "The learned line",
               truth=(x, config.true_a * x + config.true_b)))

# %% [markdown]
# ## Gradient check: is `backward` the derivative?
#
# `nnlab.gradcheck` nudges every number by ±h and compares the change in the output with what
# `backward` claims, in float64. It checks the layer (against a random upstream gradient) and the
# MSE loss. Then a slip it must catch: an MSE gradient written as `err / n`, with the 2 forgotten.

# %%
print(nnlab.gradcheck(line, X[:5]))
print(nnlab.gradcheck(nnlab.MSELoss(), line.forward(X[:5]), Y[:5]))


def mse_forgetting_the_2(yhat, y):
    """The MSE and a wrong gradient: d/dyhat mean(err**2) is 2 err / n, not err / n."""
    err = yhat - y
    return float(np.mean(err**2)), err / len(y)


print(nnlab.gradcheck(mse_forgetting_the_2, line.forward(X[:5]), Y[:5]))

# %% [markdown]
# The first two tables say PASS: every relative error is near float64 rounding. The third says
# FAIL: a factor of two is a large relative error, and it is exactly the kind of slip that would
# otherwise only show up as "training is a bit slow".
#
# ## Checkpoint: why does the MSE decrease? What would a much larger learning rate do?
#
# The MSE of a line is a bowl in `(w, b)` (a convex quadratic). Its gradient points uphill, so a
# small step against it goes down, and the steps shrink as the gradient shrinks near the bottom.
# How large may a step be? The bowl's curvature is its Hessian `2·[[mean x², mean x], [mean x, 1]]`;
# gradient descent on a quadratic converges exactly when `lr < 2 / λ_max`, λ_max its largest
# eigenvalue. The cell below computes that bound and trains the same line at several learning rates
# with `nnlab.fit`, the library's loop (the same four steps, plus a guard that notices divergence).

# %%
curv = stage1.curvature(x)
bound = curv["lr_critical"]
print(f"Hessian eigenvalues {curv['eigenvalues'].round(4)}, bound 2/λ_max = {bound:.4f}")


def train_line(lr, xs=x, ys=y, steps=config.epochs):
    """A fresh Linear(1, 1) from the handout's start, trained by nnlab.fit: (w and b after each step, History)."""
    lin = nnlab.Linear(1, 1)
    lin.W[0, 0], lin.b[0] = w0, b0
    path = {"w": [w0], "b": [b0]}

    def record(_epoch):  # called after every epoch: one full-batch step
        path["w"].append(lin.W[0, 0])
        path["b"].append(lin.b[0])
        return {}

    history = nnlab.fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=lr), xs.reshape(-1, 1),
                        ys.reshape(-1, 1), epochs=steps, evaluate=record, name=f"lr {lr:g}")
    return path, history


sweep = {lr: train_line(lr)[1] for lr in config.sweep_lrs}
print(f"{'lr':>6} {'MSE at the end':>16}  diverged")
for lr, h in sweep.items():
    print(f"{lr:>6g} {h.step_loss[-1]:>16.5g}  {h.diverged or h.step_loss[-1] > h.step_loss[0]}")
agree = all((lr > bound) == (h.diverged or h.step_loss[-1] > h.step_loss[0]) for lr, h in sweep.items())
print("every rate above the bound diverged and every rate below it converged:", agree)

# %%
show(plots.curves(OUT / "lr_sweep.png", {f"lr={lr:g}": h.step_loss for lr, h in sweep.items()},
                  f"Learning-rate sweep (the bound 2/λ_max is {bound:.4f})", xlabel="step", ylabel="MSE", logy=True,
                  ylim=(0.5 * mse_ls, 1e3 * losses[0])))

# %% [markdown]
# The last line of the cell before the figure checks the theory against the runs: below the bound
# every run settles at the least-squares MSE, above it the loss grows step after step (or
# overflows, and `fit` stops and says so). A step too large overshoots the bottom of the bowl and
# lands higher on the far side, and each overshoot is larger than the last.
#
# **Try this:** set `factor` just above 1: the run diverges, slowly at first. Just below 1 it
# converges, but zig-zags across the bowl for a long time.

# %%
factor = 0.9  # the learning rate as a multiple of the bound 2/λ_max; try 1.01, then 0.99
_, h = train_line(factor * bound)
print(f"lr {factor * bound:.4f}: MSE step 1 {h.step_loss[0]:.4g} -> step {len(h.step_loss)} {h.step_loss[-1]:.4g};",
      "diverged" if h.diverged or h.step_loss[-1] > h.step_loss[0] else "converging")

# %% [markdown]
# ## Checkpoint: if x were all near zero, which parameter would be easier to learn?
#
# Squeeze every `x` towards zero (same noise, same start) and train again. The gradient for `w`,
# `2·mean(err·x)`, carries a factor `x`; the gradient for `b`, `2·mean(err)`, does not. In curvature
# terms: the bowl is steep along `b` and almost flat along `w`, and each step removes only the
# fraction `lr × curvature` of a parameter's remaining distance to its optimum.

# %%
xs = x * config.near_zero_scale
ys = config.true_a * xs + config.true_b + (y - config.true_a * x - config.true_b)  # the same noise
path, _ = train_line(config.lr, xs, ys)
w_opt, b_opt, _ = least_squares_line(xs, ys)
H = stage1.curvature(xs)["hessian"]
print(f"x now spans [{xs.min():.3g}, {xs.max():.3g}]; curvature along w {H[0, 0]:.3g}, along b {H[1, 1]:.3g}")
for name, opt in (("w", w_opt), ("b", b_opt)):
    share = 1 - abs(path[name][-1] - opt) / abs(path[name][0] - opt)
    print(f"{name}: {100 * share:.1f}% of the way from its start to its optimum after {config.epochs} steps")
print(f"steps w needs to shrink its distance by a factor e: about {1 / (config.lr * H[0, 0]):.3g}")

# %%
show(plots.curves(OUT / "near_zero.png", {"w (x near zero)": path["w"], "b (x near zero)": path["b"]},
                  "w and b over the steps, x near zero", xlabel="step", ylabel="value"))

# %% [markdown]
# **b** is the easy one. The cell above prints how far each parameter got: `b` has reached its
# optimum, while `w` has hardly moved, and the last line says how many steps `w` would need at this
# learning rate. Nothing is wrong with `w`'s gradient: with `x` near zero the data hardly depend on
# `w`, so the loss barely changes when `w` does. (Standardising inputs, as Stage 4 does, is the cure.)
