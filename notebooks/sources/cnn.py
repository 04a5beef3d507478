# %% [markdown]
# # What a convolution buys — a small CNN against the best MLP
#
# The handout's classifier flattens each image into one row and forgets which pixels are
# neighbours. A convolution keeps them: a small filter slides over the image and computes the same
# weighted sum at every position, so a stroke is detected wherever it is, with one set of weights.
# This notebook works one `nnlab.Conv2d` through by hand, checks its gradients (and catches a
# planted slip), shows where `MaxPool2d` sends its gradient, then walks one split of the CNN study
# (`nnlab run cnn`) on a stratified subset of the MNIST images, beside the accuracy study's MLPs on
# the same rows. The full study, on every image and every seed, is in REPORT.md.

# %%
import dataclasses

from numpy.lib.stride_tricks import sliding_window_view

from nnlab import selection
from nnlab.stages import cnn, stage5

# a subset of the MNIST images and the stage's own candidates (its _candidates scales their epochs)
config = cnn.Config().quick() if QUICK else cnn.Config(mnist_limit=2000)
OUT = FIGURES / "cnn"
X, y, side, scale = stage5.load_images("mnist", None, config.mnist_limit)
X = X / scale  # pixels in [0, 1]
cnn_specs, mlp_specs = cnn._candidates("mnist", config)
print(f"MNIST subset: X {X.shape}, images {side}×{side}, classes {np.bincount(y).tolist()}")
for number, spec in enumerate(cnn_specs, start=1):
    print(f"  CNN candidate {number}: {spec.describe()}")
for number, spec in enumerate(mlp_specs, start=1):
    print(f"  MLP candidate {number}: {spec.describe()}")

# %% [markdown]
# ## One convolution, by hand
#
# Images are 4-D, `(N, C, H, W)` as in PyTorch: batch, channels, height, width. A `Conv2d(1, 4, 3,
# padding=1)` holds `W` of shape `(out, in, kh, kw)` and computes
# `out[n, o, i, j] = b[o] + Σ W[o, c, u, v] · xpad[n, c, i+u, j+v]`. nnlab does it as *im2col*:
# copy every 3×3 patch of the padded images into one column of a matrix, and the whole layer is one
# matrix product. Below, that product written out with NumPy, and one output pixel as a plain sum.

# %%
x = X[:2].reshape(2, 1, side, side)  # two images, one channel
conv = nnlab.Conv2d(1, 4, kernel_size=3, padding=1, rng=np.random.default_rng(0))
out = conv.forward(x)
print("x", x.shape, " W", conv.W.shape, " b", conv.b.shape, " out", out.shape)
padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
patches = sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C, H, W, kh, kw)
cols = patches.transpose(1, 4, 5, 0, 2, 3).reshape(conv.fan_in, -1)  # one column per (image, i, j)
W_mat = conv.W.reshape(4, -1)
by_gemm = (W_mat @ cols + conv.b[:, None]).reshape(4, 2, side, side).transpose(1, 0, 2, 3)
print("cols", cols.shape, " W as a matrix", W_mat.shape, " product", (W_mat @ cols).shape)
print("largest difference from Conv2d.forward:", np.abs(by_gemm - out).max())
n, o, i, j = 1, 2, side // 2, side // 3
pixel = np.sum(conv.W[o] * padded[n, :, i : i + 3, j : j + 3]) + conv.b[o]
print(f"out[{n}, {o}, {i}, {j}] = {out[n, o, i, j]:.6f};  Σ W[{o}] · patch + b[{o}] = {pixel:.6f}")

# %% [markdown]
# Backward is two more products. With `dout` reshaped to `(out, N·H·W)`, `dW = dout @ cols.T`: a
# sum over every column, so over every position **and every image of the batch**; `db` sums `dout`
# the same way; `dx` is `W.T @ dout`, each column added back onto the pixels it was copied from.

# %%
dout = np.random.default_rng(1).normal(size=out.shape)
dx = conv.backward(dout)
d_mat = dout.transpose(1, 0, 2, 3).reshape(4, -1)
print("dout", dout.shape, " dx", dx.shape, " dW", conv.dW.shape, " db", conv.db.shape)
print("dW vs dout @ cols.T:", np.abs(conv.dW - (d_mat @ cols.T).reshape(conv.W.shape)).max())
print("db vs dout summed over images and positions:", np.abs(conv.db - d_mat.sum(axis=1)).max())

# %% [markdown]
# ## The whole network, layer by layer
#
# `nnlab.make_cnn` stacks two blocks of convolution, 2×2 max pooling and ReLU, then flattens and
# classifies with a `Linear` layer. Each pooling halves the image; the shapes show it.

# %%
net = nnlab.make_cnn(side, channels=(8, 16), rng=np.random.default_rng(0))
h = x
for layer in net:
    h = layer.forward(h)
    print(f"{layer!r:<78} -> {h.shape}")
loss, dlogits = nnlab.SoftmaxCrossEntropyLoss()(h, y[:2])
net.backward(dlogits)
print(f"cross-entropy {loss:.4f}; gradients:", ", ".join(f"{p.name} {p.grad.shape}" for p in net.parameters()))

# %% [markdown]
# ## Gradient checks, and a slip
#
# `gradcheck` in float64 on a convolution with stride and padding, and on max pooling over an input
# without ties (a tie makes the maximum non-differentiable). The slip: a per-image loop that
# *assigns* each image's `dW` instead of adding it, so only the last image's survives. Every shape
# is right, and for a batch of one it is even correct; the check on a batch finds it.

# %%
rng = np.random.default_rng(1)
images = rng.normal(size=(3, 2, 7, 7))
print(nnlab.gradcheck(nnlab.Conv2d(2, 3, kernel_size=3, stride=2, padding=1, rng=rng), images))
print(nnlab.gradcheck(nnlab.MaxPool2d(2), rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 10))


class Conv2dLastImageDW(nnlab.Conv2d):
    """A Conv2d whose dW (and db) come from the last image of the batch alone."""

    def backward(self, dout):
        last = np.zeros_like(dout)
        last[-1] = dout[-1]
        super().backward(last)
        dW_last, db_last = self.dW.copy(), self.db.copy()
        dx = super().backward(dout)
        self.dW[...], self.db[...] = dW_last, db_last
        return dx


print(nnlab.gradcheck(Conv2dLastImageDW(2, 3, kernel_size=3, stride=2, padding=1, rng=rng), images))

# %% [markdown]
# ## Where max pooling sends the gradient
#
# Each output of `MaxPool2d(2)` is the largest of a 2×2 window, so its gradient goes to that one
# input position and nowhere else. The bottom-left window below is all zeros, as after a ReLU: a
# tie, and nnlab (like PyTorch) gives the gradient to the first zero only, not to all four.

# %%
pool = nnlab.MaxPool2d(2)
tiny = np.array([[1, 5, 2, 0], [3, 4, 8, 6], [0, 0, 7, 9], [0, 0, 1, 2]], dtype=float).reshape(1, 1, 4, 4)
grad = np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 1, 2, 2)
print("input\n", tiny[0, 0], "\noutput\n", pool.forward(tiny)[0, 0])
print("dout\n", grad[0, 0], "\ndx\n", pool.backward(grad)[0, 0])

# %% [markdown]
# ## One split, by hand
#
# The study's protocol (`nnlab.selection`): test rows set aside first; inside the training rows,
# each CNN candidate is trained on the fit rows and scored on the validation rows; the winner is
# retrained on all training rows and tested once. `cnn.fit_and_score` trains a recipe and measures
# accuracy, loss, accuracy on shifted images, size and cost; `cnn.nested_split` runs the same
# protocol for the MLP candidates on the same rows.

# %%
seed = config.seeds[0]
train_rows, test_rows = selection.outer_split(y, seed)
fit_rows, val_rows = selection.inner_split(y, train_rows, seed)
print(f"seed {seed}: {len(fit_rows)} rows to fit, {len(val_rows)} to validate, {len(test_rows)} to test")
scores = [cnn.fit_and_score(spec, X, y, fit_rows, val_rows, seed) for spec in cnn_specs]
for number, s in enumerate(scores, start=1):
    print(f"CNN candidate {number}: validation accuracy {s['accuracy']:.4f}, cross-entropy {s['loss']:.4f}")
chosen = selection.choose(scores)
cnn_test = cnn.fit_and_score(cnn_specs[chosen], X, y, train_rows, test_rows, seed)
mlp = cnn.nested_split(mlp_specs, X, y, seed)
mlp_test = mlp["test_scores"]
print(f"chosen: CNN candidate {chosen + 1}, MLP candidate {mlp['chosen'] + 1}")

# %% [markdown]
# ## Checkpoint: does the CNN beat the MLP on the same rows?
#
# Both were chosen on the same validation rows and tested once on the same test rows. One test image
# is worth the amount the last line prints; a difference of a few images on one split is weak
# evidence (the study's five splits say more).

# %%
for name, s in (("CNN", cnn_test), ("MLP", mlp_test)):
    print(f"{name}: test accuracy {s['accuracy']:.4f}, cross-entropy {s['loss']:.4f}")
print(f"CNN − MLP: {cnn_test['accuracy'] - mlp_test['accuracy']:+.4f}; one test image is {1 / len(test_rows):.4f}")
show(plots.confusion(OUT / "confusion.png", cnn_test["confusion"], f"CNN, test rows of seed {seed}"))

# %% [markdown]
# ## Checkpoint: what happens when the test images move?
#
# Each test image shifted by k pixels up, down, left and right (zeros fill in; the mean of the four
# directions). The MLP learned weights for fixed pixel positions; the CNN's filters slide, and its
# poolings forgive small moves. The candidates trained with random shifts saw such moves too.

# %%
shifts = [0, *map(int, cnn_test["shifted"])]
curves = {}
for name, s in (("CNN", cnn_test), ("MLP", mlp_test)):
    curves[name] = (shifts, [s["accuracy"], *s["shifted"].values()])
    print(f"{name}: " + ", ".join(f"shift {k}: {a:.4f}" for k, a in zip(*curves[name])))
show(plots.curves(OUT / "shifted.png", curves, "Test images shifted by k pixels", xlabel="shift k (pixels)",
                  ylabel="test accuracy"))

# %% [markdown]
# ## Checkpoint: what does each model cost?
#
# Parameters, and the multiply-adds of training (`cnn.training_multiply_adds`: forward, weight and
# input gradients of the convolutions and linear layers). A filter's weights are shared by every
# position, so a CNN can have few parameters and still do much arithmetic per image.

# %%
for name, s, spec in (("CNN", cnn_test, cnn_specs[chosen]), ("MLP", mlp_test, mlp_specs[mlp["chosen"]])):
    per_image = s["multiply_adds"] / (len(train_rows) * spec.epochs)
    print(f"{name}: {s['parameters']:>7} parameters; training: {s['multiply_adds']:.3e} multiply-adds "
          f"({spec.epochs} epochs, {per_image:.3e} per image and epoch)")
print(f"CNN / MLP: parameters {cnn_test['parameters'] / mlp_test['parameters']:.3f}, "
      f"training multiply-adds {cnn_test['multiply_adds'] / mlp_test['multiply_adds']:.3f}")

# %% [markdown]
# ## Checkpoint: what did the first layer learn?
#
# The chosen CNN's first-layer filters, on one colour scale (red positive, blue negative). Each
# weighs a pixel's 3×3 neighbourhood: a positive side beside a negative one responds to a change of
# brightness in that direction (an edge of a stroke); one of a single sign, to ink in the patch.

# %%
first = np.asarray(cnn_test["first_layer"])
print("first-layer filters:", first.shape, f"weights in [{first.min():.3f}, {first.max():.3f}]")
show(plots.filters(OUT / "filters.png", first, f"First-layer filters of the chosen CNN (seed {seed})"))

# %% [markdown]
# **Try this:** change the channels (or the training shift) of the chosen recipe and compare it with
# the candidates on the same validation rows: accuracy, accuracy on shifted images, size. Would it
# have been chosen?

# %%
channels, shift = (4, 8), cnn_specs[chosen].shift  # try (2, 4) or (32, 64); shift 0 or 3
mine = dataclasses.replace(cnn_specs[chosen], channels=channels, shift=shift)
s = cnn.fit_and_score(mine, X, y, fit_rows, val_rows, seed)
moved = ", ".join(f"shift {k}: {a:.4f}" for k, a in s["shifted"].items())
print(f"{mine.describe()}: validation accuracy {s['accuracy']:.4f} ({moved}), {s['parameters']} parameters")
print("would have been chosen:", selection.choose([*scores, s]) == len(scores))
