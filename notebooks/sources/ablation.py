# %% [markdown]
# # Beyond the handout — what each component buys, one addition at a time
#
# The handout stops at one hidden layer trained by plain SGD. The ablation (`nnlab run ablation`)
# starts from that recipe and adds one thing per row — Adam, width, AdamW's decay, dropout, batch
# normalisation, shifted images, depth, a schedule, longer training — each row keeping everything
# above it. Every row is trained and tested on the same seeded splits, so its change can be judged
# *paired* against the row above. This notebook checks the two new layers' gradients (and catches a
# planted slip), runs the study once on the 8×8 digits with a small epoch budget, and retrains one
# row by hand to see that it is nothing but the handout's loop with two more layers in it. The full
# study, on the digits and MNIST with the stage's own budget, is in REPORT.md.

# %%
import dataclasses

from nnlab.classify import build_optimizer
from nnlab.stages import ablation

DATASET = "digits"
# the stage's settings on the digits alone, with fewer epochs: a cheap run of the same study
config = dataclasses.replace(ablation.Config().quick() if QUICK else ablation.Config(digits_epochs=20),
                             datasets=(DATASET,))
OUT = FIGURES / "ablation"
print(config)
print("the handout's recipe:", ablation.base_spec(DATASET, config).describe())
for row in ablation.ROWS:
    factor = f", epochs ×{row.epochs_factor}" if row.epochs_factor > 1 else ""
    print(f"  + {row.key:<9} {row.label}: sets {row.change or '-'}, chooses {row.grid or '-'}{factor}")

# %% [markdown]
# ## Gradient checks of the new layers, and a slip
#
# `BatchNorm1d` in training mode normalises each feature with the batch's own mean and variance, so
# every row's output depends on every other row, and the backward pass must follow those paths too.
# The slip is the common shortcut `dx = dout · γ / std`, which treats the batch statistics as
# constants; the check finds it. `Dropout` draws a fresh mask at every forward pass, which a finite
# difference cannot follow: it is checked with a generator that always returns the same draws.

# %%
rng = np.random.default_rng(1)  # (not gradcheck's own seed 0: its random dout would then equal x)
x = rng.normal(size=(6, 4))
bn = nnlab.BatchNorm1d(4)
bn.gamma[...], bn.beta[...] = rng.normal(size=4), rng.normal(size=4)
print("BatchNorm1d, training mode:", bn.training, "\n", nnlab.gradcheck(bn, x))


class BatchNormConstantStats(nnlab.BatchNorm1d):
    """A BatchNorm1d whose dx ignores that the batch mean and variance depend on x."""

    def forward(self, x):
        self.std = np.sqrt(np.var(x, axis=0) + self.eps)
        return super().forward(x)

    def backward(self, dout):
        super().backward(dout)  # dgamma and dbeta stay right
        return self.gamma * dout / self.std


slip = BatchNormConstantStats(4)
slip.gamma[...], slip.beta[...] = bn.gamma, bn.beta
print(nnlab.gradcheck(slip, x))

# %%
class FixedDraws:
    """A stand-in generator whose uniform draws never change: Dropout then keeps one fixed mask."""

    def __init__(self, draws):
        self.draws = draws

    def random(self, size, dtype):
        return self.draws.astype(dtype)


drop = nnlab.Dropout(0.5, rng=FixedDraws(rng.random(x.shape)))
print(nnlab.gradcheck(drop, x))
print("mask (kept values scaled by 1/(1 - p)):\n", drop.mask)
print("evaluation mode is the identity:", np.array_equal(drop.eval().forward(x), x))

# %% [markdown]
# ## The study, from a cheap configuration
#
# `ablation.run` trains every row on every split, choosing what a row tunes (AdamW's decay, the
# dropout rate) on validation rows inside each split's training rows; a value chosen in a row is
# kept by the rows below it, split by split. Each row is then compared with the row above on the
# same splits: the mean paired difference of test accuracy, its standard error, how many splits it
# won and lost, and a paired t test.

# %%
result = ablation.run(config, OUT, jobs=os.cpu_count() or 1)
m = result.metrics[DATASET]
print(f"{m['n_images']} images, {m['splits']} splits of {m['split_rows']} rows")
print(f"{'row':<10} {'test accuracy':^17} {'minus the row above':^22} {'won/lost':^9} beyond the noise")
for r in m["rows"]:
    a, c = r["test_accuracy"], r["change"] or {}
    change = f"{c['mean']:+.4f} ± {c['se']:.4f}" if c else ""
    record = f"{c['wins']}/{c['losses']}" if c else ""
    print(f"{r['key']:<10} {a['mean']:.4f} ± {a['std']:.4f}  {change:^22} {record:^9} {c.get('beyond_noise', '')}")
show(OUT / result.figures[DATASET])

# %% [markdown]
# ## One row, by hand
#
# The batch-norm row on the first split, rebuilt from the choices the study made above it, and
# trained with the handout's loop: forward, loss, backward, update. The network now holds a
# `BatchNorm1d` after each hidden `Linear` and perhaps a `Dropout` after each activation;
# `net.train()` makes them use batch statistics and fresh masks, `net.eval()` running statistics and
# no masks. With the same seed it reproduces the study's test accuracy for that row and split.

# %%
def spec_of(key, split):
    """The recipe the study trained in row ``key`` on split number ``split``: every change and choice up to it."""
    spec = ablation.base_spec(DATASET, config)
    for row, record in zip(ablation.ROWS, m["rows"]):
        spec = dataclasses.replace(row.candidates(spec, DATASET)[0], **record["chosen"][split])
        if row.key == key:
            return spec


seed, spec = config.seeds[0], spec_of("batchnorm", 0)
X, y, _ = ablation.dataset_arrays(DATASET)
train_rows, test_rows = ablation.rows_of(y, seed, "test")
rng = np.random.default_rng(seed)
net = nnlab.make_mlp([X.shape[1], *spec.hidden, 10], nonlin=spec.nonlin, dtype=np.float32, init=spec.init, rng=rng,
                     dropout=spec.dropout, norm=spec.norm)
optimizer, loss_fn = build_optimizer(spec, net.parameters()), nnlab.SoftmaxCrossEntropyLoss()
print(spec.describe(), "\n", net)
net.train()
for epoch in range(spec.epochs):
    order = train_rows[rng.permutation(len(train_rows))]
    for start in range(0, len(order), spec.batch):
        rows = order[start : start + spec.batch]
        logits = net.forward(X[rows])
        loss, dlogits = loss_fn(logits, y[rows])
        net.backward(dlogits)
        optimizer.step()
        if epoch == start == 0:
            print("X[rows]", X[rows].shape, " logits", logits.shape, " dlogits", dlogits.shape)
net.eval()
by_hand = np.mean(net.forward(X[test_rows]).argmax(axis=1) == y[test_rows])
study = m["rows"][[r["key"] for r in m["rows"]].index("batchnorm")]["test_accuracy"]["values"][0]
print(f"test accuracy by hand {by_hand:.4f}; the study's, same row and split, {study:.4f}")

# %% [markdown]
# ## Checkpoint: which additions help beyond the noise?
#
# A row helps when its paired difference is positive and larger than the split-to-split noise: the
# t test above says which. The same numbers, ordered from the largest gain to the largest loss:

# %%
changes = sorted((r for r in m["rows"] if r["change"]), key=lambda r: -r["change"]["mean"])
for r in changes:
    c = r["change"]
    t = "—" if c["t"] is None else f"{c['t']:+.2f}"
    print(f"{r['label']:<45} {c['mean']:+.4f}  t {t} (critical {c['t_critical']:.2f})  beyond: {c['beyond_noise']}")

# %% [markdown]
# ## Checkpoint: does the best recipe reach the study's goal?
#
# With this small budget the answer may differ from the full study's in REPORT.md.

# %%
verdict = "meets" if m["meets_goal"] else f"misses by {m['shortfall']:.4f}"
print(f"best row: {m['best']} ({m['best_mean']:.4f}); goal {m['goal']:.3f}: {verdict}")
c = m["first_vs_best"]
print(f"best minus the handout's recipe: {c['mean']:+.4f} ± {c['se']:.4f} over {c['splits']} splits")

# %% [markdown]
# **Try this:** add a row of your own on top of the last one — a change with nothing to tune, say
# GELU activations or a third hidden layer — and compare it, split by split, with the last row.

# %%
mine = ablation.Row("gelu", "GELU instead of ReLU", {"nonlin": "gelu"})  # or {"hidden": (256, 256, 256)}
last = m["rows"][-1]
now = [ablation.train_and_score(DATASET, mine.candidates(spec_of(last["key"], i), DATASET)[0], seed, "test")["accuracy"]
       for i, seed in enumerate(config.seeds)]
c = ablation.paired_change(now, last["test_accuracy"]["values"])
print(f"{mine.label}: {np.mean(now):.4f}; minus row '{last['key']}': {c['mean']:+.4f} ± {c['se']:.4f}, "
      f"won {c['wins']} and lost {c['losses']} of {c['splits']} splits; beyond the noise: {c['beyond_noise']}")
