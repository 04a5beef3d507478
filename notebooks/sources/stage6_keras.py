# %% [markdown]
# # Stage 6 — the credit model again, in TensorFlow/Keras
#
# Stage 4's model, built the way most people would build it: a Keras `Dense(1)` layer with an L2
# kernel regulariser, SGD and the MSE loss, trained by `model.fit`. Keras's `L2(λ)` adds `λ·ΣW²`,
# the same penalty as Stage 4. The question this notebook asks of it: does a library that computes
# gradients automatically land where nnlab's hand-written backward pass lands?
# (Needs TensorFlow: the `tf` extra.)

# %%
from nnlab.stages import stage4, stage6

config = stage6.Config().quick() if QUICK else stage6.Config()
OUT = FIGURES / "stage6"
tf = stage6.import_tensorflow()  # quiet logs, deterministic ops, one thread: the same numbers every run
names = nnlab.data.CREDIT_FEATURES
X, y = nnlab.data.credit_table()
Xn, mu, sigma = nnlab.standardize_features(X)
print(config)
print("TensorFlow", tf.__version__)

# %% [markdown]
# ## The Keras model, and its weights next to nnlab's
#
# Keras stores a dense layer's weights as a *kernel* of shape (in, out) and computes `x @ kernel`;
# nnlab's `Linear` stores `W` of shape (out, in) and computes `x @ W.T`. Same numbers, transposed.

# %%
tf.keras.utils.set_random_seed(config.seed)
model = stage6.build_keras_model(tf, config.lam, config.lr)  # Dense(1, kernel_regularizer=L2(lam)), SGD, MSE
kernel, bias = (w.copy() for w in model.get_weights())
twin = nnlab.Linear(3, 1)
twin.W[...], twin.b[...] = kernel.T, bias
print("Keras kernel", kernel.shape, " nnlab W", twin.W.shape, " bias", bias.shape)
print("same predictions:", np.allclose(model(Xn.astype(np.float32)).numpy(), twin.forward(Xn), atol=1e-4))

# %% [markdown]
# ## A gradient check across two libraries
#
# At these starting weights, three gradients of the total loss (MSE + L2) with respect to the
# weights: Keras's automatic differentiation (`tf.GradientTape`), nnlab's backward pass plus the
# penalty's `2λW`, and central differences of the loss.

# %%
def loss_value(layer):
    """Stage 4's total loss, MSE + lam·ΣW², of an nnlab layer on the credit table."""
    return float(np.mean((layer.forward(Xn) - y) ** 2) + config.lam * np.sum(layer.W**2))


with tf.GradientTape() as tape:
    total = tf.reduce_mean(tf.square(model(Xn.astype(np.float32)) - y.astype(np.float32))) + tf.add_n(model.losses)
keras_grad = tape.gradient(total, model.trainable_variables)[0].numpy().T  # kernel -> nnlab's layout
twin.backward(2 * (twin.forward(Xn) - y) / len(Xn))
nnlab_grad = twin.dW + 2 * config.lam * twin.W
numeric = nnlab.numerical_gradient(lambda: loss_value(twin), twin.W, h=1e-3)  # a quadratic: any step is exact
print(f"nnlab vs central differences: relative error {nnlab.rel_error(nnlab_grad, numeric):.1e}")
print(f"nnlab vs Keras:               relative error {nnlab.rel_error(nnlab_grad, keras_grad):.1e}")

# %% [markdown]
# nnlab agrees with the finite differences to rounding, and with Keras to the precision of Keras's
# float32 arithmetic: two independent ways of differentiating, one answer.
#
# ## Training with `model.fit`, the loss recorded by a callback
#
# A Keras callback's `on_epoch_end` receives the epoch's logs; `logs["loss"]` is the total loss
# (data + L2). The rows go in as one cached batch: given NumPy arrays, `model.fit` rebuilds its
# data pipeline every epoch, which costs far more than the arithmetic on a handful of rows. The
# batch, model, optimizer and epochs are the handout's.

# %%
class LossHistory(tf.keras.callbacks.Callback):
    """Keeps the total loss Keras reports at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["loss"]))


def fit_keras(model, epochs=config.epochs):
    """model.fit on all five rows as one cached batch; returns the loss per epoch."""
    batch = tf.data.Dataset.from_tensor_slices((Xn.astype(np.float32), y.astype(np.float32))).batch(len(y)).cache()
    history = LossHistory()
    model.fit(batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[history])
    return history.losses


losses = fit_keras(model)
W_std, b_std = model.get_weights()[0][:, 0].astype(float), float(model.get_weights()[1][0])
print(f"total loss: epoch 1 {losses[0]:.2f} -> epoch {len(losses)} {losses[-1]:.3f}")
show(plots.curves(OUT / "loss.png", {"Keras: MSE + L2": losses}, f"Keras, λ = {config.lam:g}", ylabel="total loss",
                  logy=True))

# %% [markdown]
# ## The weights in both unit systems, a ranking, and two predictions
#
# As in Stage 4: weights on standardised features compare across features; in original units they
# say points per unit of each feature. The two people are Stage 4's.

# %%
W_orig, b_orig = nnlab.unstandardize_linear_weights(W_std, b_std, mu, sigma)
for n, ws, wo in zip(names, W_std, W_orig):
    print(f"{n:>14}: {ws:+9.4f} standardised, {wo:+9.4f} per unit")
print("ranking by |weight|:", " > ".join(names[k] for k in np.argsort(-np.abs(W_std))))
for who, person in stage4.PEOPLE.items():
    z = (np.array(person, dtype=float).reshape(1, -1) - mu) / sigma
    print(f"person {who} {person}: Keras predicts {model.predict(z, verbose=0)[0, 0]:.2f}, "
          f"original-unit weights give {W_orig @ person + b_orig:.2f}")

# %% [markdown]
# ## A slip that the gradient check catches
#
# Writing the penalty's gradient as `λW` (the 2 forgotten) is easy to miss at the start, where the
# data's gradient dwarfs the penalty's. At the trained weights the two nearly cancel, and the
# slip's error is most of what is left. Checked against central differences there:

# %%
probe = nnlab.Linear(3, 1)
probe.W[...], probe.b[...] = W_std, b_std
probe.backward(2 * (probe.forward(Xn) - y) / len(Xn))
numeric = nnlab.numerical_gradient(lambda: loss_value(probe), probe.W, h=1e-3)
print(f"data + 2·lam·W: relative error {nnlab.rel_error(probe.dW + 2 * config.lam * probe.W, numeric):.1e}")
print(f"data +   lam·W: relative error {nnlab.rel_error(probe.dW + config.lam * probe.W, numeric):.1e}")

# %% [markdown]
# ## Does nnlab, doing the same arithmetic, end where Keras ends?
#
# The nnlab twin from above (Keras's starting weights), in float32 like Keras, trained by Stage 4's
# loop with the same learning rate, λ and epochs.

# %%
twin = twin.astype(np.float32)  # as Keras computes
X32, y32 = Xn.astype(np.float32), y.astype(np.float32)
for epoch in range(config.epochs):
    err = twin.forward(X32) - y32
    twin.backward(2 * err / len(X32))
    twin.dW += 2 * config.lam * twin.W
    twin.W -= config.lr * twin.dW
    twin.b -= config.lr * twin.db
print("nnlab:", twin.W.ravel().round(4), " Keras:", W_std.round(4))
print(f"largest difference: {np.max(np.abs(twin.W.ravel() - W_std)):.1e}")

# %% [markdown]
# The difference printed is at the level of float32 rounding accumulated over the epochs: the two
# libraries did the same arithmetic.
#
# ## What does λ do, in Keras, in nnlab and in closed form?
#
# For each λ, three answers to "where is the minimum of MSE + λ·ΣW²": Keras and nnlab each trained
# to convergence, and Stage 4's closed form. Both trainings use half of Stage 1's stability bound
# as learning rate, since the handout's lr is too large for the largest λ (the last cell shows
# why). Keras trains in a compiled loop here (`stage6.keras_compiled_descent`) rather than through
# `model.fit`, whose per-epoch overhead would dominate a run this long.

# %%
sweep = {}
for lam in config.lams:
    lr = stage4.stable_lr_bound(Xn, lam) / 2
    tf.keras.utils.set_random_seed(config.seed)
    keras_model = stage6.build_keras_model(tf, lam, lr)
    start = (keras_model.get_weights()[0].T.astype(float), keras_model.get_weights()[1].astype(float))
    stage6.keras_compiled_descent(tf, keras_model, Xn, y, config.converge_steps)
    ours, *_ = stage4.train_to_convergence(Xn, y, lam, start, tol=1e-10, max_epochs=60000)
    trio = {"Keras": keras_model.get_weights()[0][:, 0].astype(float), "nnlab": ours.W.ravel().copy(),
            "closed form": stage4.ridge_closed_form(Xn, y, lam)[0]}
    sweep[lam] = trio
    worst = max(np.max(np.abs(a - b)) for a in trio.values() for b in trio.values())
    print(f"λ = {lam:<5g} closed form {trio['closed form'].round(3)}; largest disagreement of the three {worst:.1e}")
lams = np.array(config.lams)
series = {f"{n} ({who})": (lams, [s[who][j] for s in sweep.values()], {"color": f"C{j}", **style})
          for j, n in enumerate(names) for who, style in (("Keras", {"marker": "o", "ls": ""}),
                                                         ("nnlab", {"marker": "x", "ls": ""}), ("closed form", {}))}
show(plots.curves(OUT / "lambda.png", series, "Weights against λ: Keras (o), nnlab (x), closed form (line)",
                  xlabel="λ (symlog)", ylabel="weight (standardised)", logx=True))

# %% [markdown]
# Three methods, one answer at every λ (the disagreement column). As λ grows every weight is pulled
# towards zero, and the correlated pair (utilisation, late payments) is pulled towards sharing its
# weight.
#
# **Try this:** train the handout's Keras model, at the handout's learning rate, with another λ,
# and compare the learning rate with Stage 1's bound for that λ. Above the bound, the loss explodes.

# %%
lam = 0.1  # try 1, then 10
tf.keras.utils.set_random_seed(config.seed)
trial = stage6.build_keras_model(tf, lam, config.lr)
trial_losses = fit_keras(trial)
print(f"λ = {lam:g}: lr {config.lr} against the bound 2/λ_max = {stage4.stable_lr_bound(Xn, lam):.4f}")
print(f"total loss after {len(trial_losses)} epochs: {trial_losses[-1]:.4g}; weights {trial.get_weights()[0].ravel()}")
