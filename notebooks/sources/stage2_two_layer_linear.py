# %% [markdown]
# # Stage 2 — two Linear layers, chained by hand
#
# Two `nnlab.Linear` layers, one after the other, with nothing in between: `x → Linear(1, 4) →
# Linear(4, 1) → ŷ`, trained on a fresh draw of Stage 1's line. Each layer's `backward` takes
# dLoss/dOutput, fills its own `dW` and `db`, and returns dLoss/dInput for the layer before it:
# the chain rule, as code. Then the gradients are checked, and the stack turns out to be one line.

# %%
from nnlab.stages import stage2
from nnlab.stages.common import least_squares_line

config = stage2.Config().quick() if QUICK else stage2.Config()
OUT = FIGURES / "stage2"
nnlab.seed_everything(config.seed)
lin1 = nnlab.Linear(in_dim=1, out_dim=config.hidden, name="lin1")
lin2 = nnlab.Linear(in_dim=config.hidden, out_dim=1, name="lin2")
x, y = nnlab.data.make_line(config.n)
X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
print(config)

# %% [markdown]
# ## One pass through both layers, shapes printed
#
# Forward goes left to right, backward right to left; each gradient has the shape of the thing it
# is the gradient of.

# %%
h = lin1.forward(X)                 # (n, 1) -> (n, 4)
yhat = lin2.forward(h)              # (n, 4) -> (n, 1)
dyhat = 2 * (yhat - Y) / len(X)     # dMSE/dyhat
dh = lin2.backward(dyhat)           # fills lin2.dW, lin2.db; returns dLoss/dh
dx = lin1.backward(dh)              # fills lin1.dW, lin1.db; returns dLoss/dx
for name, value in [("X", X), ("h", h), ("yhat", yhat), ("dyhat", dyhat), ("dh", dh), ("dx", dx),
                    ("lin1.dW", lin1.dW), ("lin1.db", lin1.db), ("lin2.dW", lin2.dW), ("lin2.db", lin2.db)]:
    print(f"{name:>8}: {value.shape}")

# %% [markdown]
# ## Checkpoint: verify `lin1.backward` and `lin2.backward` by finite differences on 3 points
#
# On a tiny batch of three rows, every analytic gradient is compared with the central difference
# `(L(θ + h) − L(θ − h)) / 2h` of the MSE, in float64, one number at a time. The relative error is
# `‖a − n‖ / (‖a‖ + ‖n‖)`. `stage2.finite_difference_check` does exactly that for this network.

# %%
rows = list(config.check_rows)
check = stage2.finite_difference_check(nnlab.Sequential(lin1, lin2), X[rows].copy(), Y[rows], config.fd_step)
for name, error in check["errors"].items():
    print(f"{name:>8}: relative error {error:.1e}")
print(f"largest: {check['max_error']:.1e}")

# %% [markdown]
# The relative errors above are at the level of float64 rounding in a central difference: the
# analytic and the numerical gradients agree. What would a mistake look like? A common
# one is to average `db` over the batch instead of summing it (the bias is added to every row, so
# its gradient is the sum). Below, a `Linear` with that slip, checked by `nnlab.gradcheck`:

# %%
class LinearAveragingDb(nnlab.Linear):
    """A Linear whose backward averages db over the batch: wrong, db is the sum over the rows."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.db[...] = np.mean(dout, axis=0)
        return dx


slipped = LinearAveragingDb(1, config.hidden, rng=np.random.default_rng(0))
print(nnlab.gradcheck(slipped, X[rows]))

# %% [markdown]
# `W` and the input still pass; `b` fails, and the table says which parameter to look at.
#
# ## Training: the loop with two layers

# %%
losses = []
for epoch in range(config.epochs):
    h = lin1.forward(X)                        # forward
    yhat = lin2.forward(h)
    err = yhat - Y
    losses.append(float(np.mean(err**2)))      # loss
    dh = lin2.backward(2 * err / len(X))       # backward, last layer first
    lin1.backward(dh)
    for layer in (lin1, lin2):                 # update
        layer.W -= config.lr * layer.dW
        layer.b -= config.lr * layer.db
w_ls, b_ls, mse_ls = least_squares_line(x, y)
print(f"MSE: epoch 1 {losses[0]:.4f} -> epoch {len(losses)} {losses[-1]:.6f}; least-squares MSE {mse_ls:.6f}")
show(plots.curves(OUT / "loss.png", {"MSE": losses}, "Two-layer linear network: MSE", ylabel="MSE", logy=True,
                  hline=(mse_ls, "least-squares optimum")))

# %% [markdown]
# ## Checkpoint: does the loss decrease steadily?
#
# Count the epochs in which the loss went *up*, and compare the largest rise with the spacing of
# float64 numbers at the final loss (`np.spacing`: one unit in the last place).

# %%
rises = np.diff(losses)
print(f"epochs where the loss rose: {int(np.sum(rises > 0))} of {len(rises)}")
print(f"largest rise {max(rises.max(), 0.0):.2e}; "
      f"one unit in the last place of the final loss {np.spacing(losses[-1]):.2e}")

# %% [markdown]
# If the count is zero, the loss fell at every epoch. If it is not, the largest rise is only a few
# units in the last place: float64 rounding near the bottom of the bowl, not learning going wrong.
# Either way, the steady fall of the curve above says the layers' backward passes point downhill.
#
# ## Checkpoint: why does a stack of linear layers still represent a linear map?
#
# `lin2(lin1(x)) = W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`. A product of matrices is a
# matrix, so the two layers are one `Linear` with `W = W2 @ W1` and `b = W2 @ b1 + b2`. The cell
# below collapses the trained network that way and compares it with the network and with the
# least-squares line.

# %%
w_net = (lin2.W @ lin1.W).item()
b_net = (lin2.W @ lin1.b + lin2.b).item()
gap = np.max(np.abs(lin2.forward(lin1.forward(X)).ravel() - (w_net * x + b_net)))
params = sum(p.value.size for p in nnlab.Sequential(lin1, lin2).parameters())
print(f"collapsed: w = {w_net:.4f}, b = {b_net:.4f}; largest gap to the network's predictions {gap:.1e}")
print(f"least squares: w = {w_ls:.4f}, b = {b_ls:.4f}")
print(f"the network has {params} parameters; the line it computes has 2")
show(plots.fit(OUT / "fit.png", x, y, {f"network = {w_net:.3f} x {b_net:+.3f}": w_net * x + b_net},
               f"The 1-{config.hidden}-1 linear network is one straight line", truth=(x, 2.5 * x - 0.7)))

# %% [markdown]
# The gap is float64 rounding: the network *is* the line `w x + b`, and training has brought it to
# the least-squares line. Depth without a nonlinearity adds parameters, not expressive power.
#
# **Try this:** change `hidden`, down to a single unit or up to many. The collapsed line comes out
# the same; only the number of parameters spent to compute it changes.

# %%
hidden = 16  # try 1, then 64
wide = nnlab.Sequential(nnlab.Linear(1, hidden), nnlab.Linear(hidden, 1))
nnlab.fit(wide, nnlab.MSELoss(), nnlab.SGD(wide.parameters(), lr=config.lr), X, Y, epochs=config.epochs)
w_wide = (wide[1].W @ wide[0].W).item()
b_wide = (wide[1].W @ wide[0].b + wide[1].b).item()
print(f"1-{hidden}-1 network collapses to w = {w_wide:.4f}, b = {b_wide:.4f}")
