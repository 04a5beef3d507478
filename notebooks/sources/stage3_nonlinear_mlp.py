# %% [markdown]
# # Stage 3 — a nonlinear MLP on a sine
#
# A straight line cannot follow `sin(2πx)`. Put a nonlinearity between two `Linear` layers and it
# can: each hidden unit contributes a kink (ReLU) or a smooth step (tanh), and the output layer adds
# them up. This notebook checks the activations and their derivatives, trains the handout's
# `MLP(1, 32, 1)` with ReLU and with tanh from the *same* initial weights, and asks which fits
# better, what more epochs buy, and whose fault the misfit is.

# %%
import math

from nnlab.stages import stage3

config = stage3.Config().quick() if QUICK else stage3.Config()
OUT = FIGURES / "stage3"
nnlab.seed_everything(config.seed)
x, y = nnlab.data.make_sine(config.n, config.noise)
X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
grid = np.linspace(-1, 1, config.grid_points).reshape(-1, 1)  # where the fit is compared with the true sine
sine = np.sin(2 * math.pi * grid).ravel()
truth = (x, np.sin(2 * math.pi * x))  # the noise-free sine at the data's x
noise_ms = np.mean((y - truth[1]) ** 2)
print(config)
print(f"noise drawn: mean square {noise_ms:.5f}; variance of the sine {sine.var():.4f}")

# %% [markdown]
# ## Mini-check: ReLU and its backward pass
#
# `relu` keeps positive numbers and zeroes the rest; `relu_backward(z, dout)` lets the upstream
# gradient through where `z > 0` and blocks it elsewhere (at exactly 0 too: the derivative there is
# taken as 0). `tanh_backward(z, dout)` multiplies by the derivative `1 − tanh(z)²`.

# %%
z = np.array([-2.0, 0.0, 3.0])
checks = [("relu(z)", nnlab.relu(z), [0.0, 0.0, 3.0]),
          ("relu_backward(z, 10)", nnlab.relu_backward(z, np.full(3, 10.0)), [0.0, 0.0, 10.0]),
          ("tanh_backward(z, 1)", nnlab.tanh_backward(z, np.ones(3)), 1 - np.tanh(z) ** 2)]
for name, got, want in checks:
    nnlab.assert_close(name, got, np.asarray(want))

# %% [markdown]
# ## Gradient check of the activations, and what a slip looks like
#
# `gradcheck` takes a pair `(f, f_backward)` and compares `f_backward` with finite differences of
# `f`. The inputs stay away from ReLU's kink at 0, where a finite difference straddles two slopes.
# The slip below is the one the handout warns about: feeding the backward pass the activation's
# *output* `h = tanh(z)` instead of its input `z`.

# %%
rng = np.random.default_rng(0)
z = rng.uniform(0.1, 2.0, (4, 5)) * rng.choice([-1.0, 1.0], (4, 5))  # |z| >= 0.1: away from the kink
print(nnlab.gradcheck((nnlab.relu, nnlab.relu_backward), z))
print(nnlab.gradcheck((nnlab.tanh, nnlab.tanh_backward), z))
print(nnlab.gradcheck((nnlab.tanh, lambda z, dout: nnlab.tanh_backward(nnlab.tanh(z), dout)), z))

# %% [markdown]
# The last table fails. (For ReLU the same slip happens to be harmless, since `h > 0` exactly when
# `z > 0`; for tanh it is wrong everywhere except at 0.)
#
# ## One pass through the MLP, shapes printed
#
# `nnlab.MLP` is `Linear → ReLU|Tanh → Linear`. Its `forward` returns the prediction and the hidden
# activations `h`, and keeps the pre-activation `z1` as `h_pre` for the backward pass.

# %%
model = nnlab.MLP(1, config.hidden, 1, nonlin="relu", rng=np.random.default_rng(config.seed))
yhat, h = model.forward(X)
dx = model.backward(2 * (yhat - Y) / len(X), h)
for name, value in [("X", X), ("z1 = h_pre", model.h_pre), ("h", h), ("yhat", yhat), ("dx", dx),
                    ("l1.dW", model.l1.dW), ("l1.db", model.l1.db), ("l2.dW", model.l2.dW), ("l2.db", model.l2.db)]:
    print(f"{name:>10}: {value.shape}")
print(nnlab.gradcheck(model, X[:5]))

# %% [markdown]
# ## Training: the handout's loop, with ReLU and with tanh
#
# Both networks start from the same weights (the same seeded generator) and see the same data, so
# the comparison isolates the activation. Each is trained for the long budget, with a snapshot of
# its predictions at the short one, the handout's two epoch counts.

# %%
def train_handout(nonlin, lr=config.lr, epochs=config.long_epochs, snapshot=config.epochs):
    """The handout's full-batch loop; returns the loss curve and predictions on the data and the grid."""
    net = nnlab.MLP(1, config.hidden, 1, nonlin=nonlin, rng=np.random.default_rng(config.seed))
    run = {"loss": []}
    for epoch in range(epochs):
        yhat, h = net.forward(X)                       # forward
        err = yhat - Y
        run["loss"].append(float(np.mean(err**2)))     # loss
        net.backward(2 * err / len(X), h)              # backward
        for layer in (net.l1, net.l2):                 # update
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
        if epoch + 1 in (snapshot, epochs):
            run[epoch + 1] = {"fit": net.predict(X).ravel(), "grid": net.predict(grid).ravel()}
    return run


runs = {nonlin: train_handout(nonlin) for nonlin in config.nonlins}
show(plots.curves(OUT / "loss.png", {nonlin: r["loss"] for nonlin, r in runs.items()},
                  "MSE per epoch, the handout's gradient descent", ylabel="MSE", logy=True,
                  hline=(config.noise**2, "noise variance")))

# %% [markdown]
# ## Checkpoint: swap in tanh. Which fits better here, and why (bias and variance)?
#
# Two errors tell the story: against the noisy training targets, and against the noise-free sine on
# a fine grid. A training error far above the noise's mean square (printed at the top) means the
# network has not even fit the signal: **high bias**, underfitting. A training error *below* it
# would mean fitting the noise: **variance**.

# %%
def errors(run, epochs):
    """Training MSE and MSE against the true sine, after ``epochs``."""
    return np.mean((run[epochs]["fit"] - y) ** 2), np.mean((run[epochs]["grid"] - sine) ** 2)


print(f"{'':>5} {'epochs':>7} {'train MSE':>10} {'MSE vs sine':>12} {'train / noise':>14}")
for nonlin, run in runs.items():
    for epochs in (config.epochs, config.long_epochs):
        train_error, sine_error = errors(run, epochs)
        print(f"{nonlin:>5} {epochs:>7} {train_error:>10.4g} {sine_error:>12.4g} {train_error / noise_ms:>14.3g}")
best = min(runs, key=lambda k: errors(runs[k], config.long_epochs)[1])
print(f"closer to the sine after {config.long_epochs} epochs: {best}")

# %% [markdown]
# The last line names the activation closer to the sine. The last column says how far each is from
# fitting noise: both training errors stay well above the noise's mean square (a ratio above one),
# so neither network overfits. Both **underfit**: an error that stays above the noise even on the
# training points is bias. (Variance, how far the fit moves with another draw of the data, needs
# several draws; REPORT.md's Stage 3 measures it.) But whose bias — the network's, or the optimiser's?
# Train the very same networks, from the same start and for the same epochs, with Adam instead of the
# handout's plain gradient descent:

# %%
adam = {}
for nonlin in config.nonlins:
    net = nnlab.MLP(1, config.hidden, 1, nonlin=nonlin, rng=np.random.default_rng(config.seed))
    nnlab.fit(net, nnlab.MSELoss(), nnlab.Adam(net.parameters(), lr=config.adam_lr), X, Y, epochs=config.long_epochs)
    adam[nonlin] = net
    adam_error = np.mean((net.predict(grid).ravel() - sine) ** 2)
    handout_error = errors(runs[nonlin], config.long_epochs)[1]
    print(f"{nonlin:>5}: MSE vs sine with Adam {adam_error:.3g}, with the handout's step {handout_error:.3g} "
          f"({handout_error / adam_error:.3g} times higher)")
show(plots.fit(OUT / "fit_adam.png", x, y, {f"{k}, Adam": net.predict(X).ravel() for k, net in adam.items()},
               f"The same networks trained by Adam for {config.long_epochs} epochs", truth=truth))

# %% [markdown]
# Same network, same data, same number of epochs: if Adam lands far closer to the sine (the ratio
# printed above), then the handout's hidden layer can draw the sine, and the handout's misfit belongs to plain
# gradient descent at its small learning rate, not to the network's capacity.
#
# ## Checkpoint: increase the epochs from the short budget to the long one. What happens, and why?
#
# The table above has both budgets; the cell below puts each activation's two rows side by side.
# Overfitting would show as the training error falling below the noise while the error against the
# sine rises. Short of that, more epochs buy as much as the optimiser still descends: an error that
# barely moves is plain gradient descent stuck on a plateau at this learning rate, not the limit of
# the network (Adam, above, shows how far the same network can go).

# %%
for nonlin, run in runs.items():
    (short_train, short_sine), (long_train, long_sine) = (errors(run, e) for e in (config.epochs, config.long_epochs))
    print(f"{nonlin:>5}: MSE vs sine {short_sine:.4g} -> {long_sine:.4g} ({100 * (1 - long_sine / short_sine):.1f}% "
          f"lower after {config.long_epochs // config.epochs}x the epochs); "
          f"training MSE below the noise: {bool(long_train < noise_ms)}")

# %% [markdown]
# ## Checkpoint: plot predictions against ground truth

# %%
for epochs in (config.epochs, config.long_epochs):
    fits = {f"{k}, {epochs} epochs": r[epochs]["fit"] for k, r in runs.items()}
    show(plots.fit(OUT / f"fit_{epochs}.png", x, y, fits, f"Predictions after {epochs} epochs (lr {config.lr:g})",
                   truth=truth))

# %% [markdown]
# **Try this:** raise the learning rate. A larger step gets further down in the same epochs, until
# it is too large and the loss blows up (`fit` would stop and say so; this loop just shows `nan`).

# %%
lr = 4 * config.lr  # try 2x, 10x, 50x the handout's
for nonlin in config.nonlins:
    run = train_handout(nonlin, lr=lr, epochs=config.epochs)
    print(f"{nonlin:>5}, lr {lr:g}: MSE vs sine after {config.epochs} epochs {errors(run, config.epochs)[1]:.4g}")
