# %% [markdown]
# # Stage 7 — our own network on a real data set
#
# The handout's last stage: choose a data set, train a network, and report how the hyper-parameters
# were chosen, how many layers and neurons, how the data were split, how the model was evaluated,
# and the results. Our data: the Breast Cancer Wisconsin (Diagnostic) set bundled with scikit-learn,
# measurements of the cell nuclei in biopsy images, each labelled malignant or benign. Our network:
# nnlab's, behind scikit-learn's estimator API (`nnlab.estimators.MLPClassifier`), so that
# scikit-learn's pipelines, cross-validation and searches work with it unchanged.
# (`stage7.Config(csv=..., target=...)` runs the same steps on a CSV of your own.)

# %%
import inspect

from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from nnlab.data.preprocess import make_preprocessor
from nnlab.estimators import MLPClassifier
from nnlab.metrics import paired_difference
from nnlab.stages import stage7

config = stage7.Config().quick() if QUICK else stage7.Config()
OUT = FIGURES / "stage7"
table = stage7.load_table(config)
print(config)
print(f"{table.source}: {len(table.y)} rows, {len(table.features_used)} feature columns, task: {table.task}")
print("classes:", dict(zip(table.classes, np.unique(table.y, return_counts=True)[1].tolist())))

# %% [markdown]
# ## Checkpoint: how the data were split
#
# The test rows are set aside first, stratified by class and fixed by the seed, and are used once,
# at the very end. Everything else (the search, the final training and its early stopping) happens
# on the other rows.

# %%
pool, test = stage7.split_rows(table, config.seed)
X_pool, y_pool, X_test, y_test = table.X.iloc[pool], table.y[pool], table.X.iloc[test], table.y[test]
for name, labels in (("non-test", y_pool), ("test", y_test)):
    shares = ", ".join(f"{c} {np.mean(labels == k):.3f}" for k, c in zip(np.unique(table.y), table.classes))
    print(f"{name:>8}: {len(labels)} rows; class shares {shares}")
print(f"the final model early-stops on {stage7.VALIDATION_FRACTION:.0%} of the non-test rows")

# %% [markdown]
# ## The estimator, and the nnlab network inside it
#
# A scikit-learn `Pipeline`: the preprocessing (imputation and standardisation, fitted on the rows
# it trains on) and nnlab's `MLPClassifier`. After `fit`, the trained network is
# `network_`, an `nnlab.Sequential` of the layers you know. Below, one forward and backward pass
# through it by hand, on a few standardised rows: the same steps as Stage 5's loop.

# %%
prep = make_preprocessor(table.numeric, table.categorical, table.prescale, config.impute, config.max_categories)
demo = Pipeline([("prep", prep), ("mlp", MLPClassifier(hidden_layer_sizes=(16, 16), random_state=config.seed))])
demo.fit(X_pool, y_pool)
net = demo.named_steps["mlp"].network_
print(net)
rows = demo.named_steps["prep"].transform(X_pool.iloc[:8])  # (8, 30), standardised
logits = net.forward(rows)
probs = nnlab.softmax(logits)
labels = np.searchsorted(demo.named_steps["mlp"].classes_, y_pool[:8])
net.backward(nnlab.softmax_cross_entropy_backward(probs, labels))
print("rows", rows.shape, " logits", logits.shape, " probabilities", probs.shape)
print("gradients:", ", ".join(f"{p.name} {p.grad.shape}" for p in net.parameters()))
print(f"cross-entropy of these rows: {nnlab.cross_entropy(probs, labels):.4f}")

# %% [markdown]
# ## Gradient check, and a slip that shapes cannot catch
#
# `gradcheck` checks the network (in float64, which it is). The slip: a `Linear` whose backward
# computes `x.T @ dout` instead of `dout.T @ x`. For a square layer (`Linear(16, 16)`) that has the right
# shape and the wrong values — the transpose of the right answer — so only a gradient check finds it.

# %%
print(nnlab.gradcheck(net, rows[:4]))


class LinearTransposedDW(nnlab.Linear):
    """A Linear whose dW is the transpose of the right one: x.T @ dout instead of dout.T @ x."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.dW[...] = self.x.T @ dout
        return dx


print(nnlab.gradcheck(LinearTransposedDW(16, 16, rng=np.random.default_rng(0)),
                      np.random.default_rng(1).normal(size=(4, 16))))

# %% [markdown]
# ## Checkpoint: how the hyper-parameters were chosen
#
# A random search (`RandomizedSearchCV`, fixed seed) draws recipes from the grid below: depth,
# width, activation, optimizer with its learning rate, L2 strength `alpha` and batch size. Each
# recipe is scored by stratified k-fold cross-validation on the non-test rows — mean validation
# cross-entropy, the preprocessing refitted inside every fold — and ranked. `stage7.search` does
# all of it; the test rows are not passed to it.

# %%
for grid in stage7.SEARCH_SPACE:
    print({k.removeprefix("mlp__"): v for k, v in grid.items()})
results = stage7.search(table, pool, config)
print(f"\n{config.candidates} recipes, {config.folds}-fold cross-validation on {len(pool)} rows:")
for rank, r in enumerate(results, start=1):
    print(f"{rank:>3}. {r['recipe']:<55} CV loss {r['cv_loss']:.4f}")
show(plots.dots(OUT / "search.png", {f"#{i + 1}": r["cv_loss_folds"] for i, r in enumerate(results)},
                "Cross-validation loss of each recipe, fold by fold (ranked)", ylabel="CV loss"))

# %% [markdown]
# The winner is the recipe with the lowest mean cross-validation loss; the dots show how much that
# mean hides from fold to fold, which is worth remembering when two recipes are close.
#
# ## Checkpoint: how many layers and neurons
#
# The winning recipe, retrained on all non-test rows, early-stopping on a validation share of them
# (the weights of the best validation epoch are kept).

# %%
best = results[0]
final = stage7.make_pipeline(table, config, **best["params"]).fit(X_pool, y_pool)
mlp = final.named_steps["mlp"]
print("chosen:", best["recipe"])
print(mlp.network_)
print(f"{sum(p.value.size for p in mlp.network_.parameters())} parameters; "
      f"{mlp.n_iter_} epochs run, weights kept from epoch {mlp.best_epoch_}")
show(plots.curves(OUT / "learning_curves.png", {"training loss": mlp.loss_curve_,
                                                "validation loss": mlp.validation_loss_curve_},
                  "Learning curves of the chosen recipe", logy=True))

# %% [markdown]
# ## Checkpoint: how the model was evaluated, and the results
#
# Once, on the test rows: accuracy, macro-F1 and ROC-AUC, each with a percentile bootstrap interval
# over resampled test rows (the cell prints its level). Next to it, `stage7.baselines`: three models
# trained on the same rows through the same preprocessing — always guessing the majority class,
# logistic regression, and scikit-learn's own MLP with the same epoch budget and early stopping.
# `stage7.score_models` scores them all; its last column is the paired bootstrap interval of nnlab's
# accuracy minus the baseline's: an interval holding 0 means the test rows cannot tell the two apart.

# %%
models = {"nnlab MLP (chosen by CV)": final, **stage7.baselines(table, X_pool, y_pool, config)}
scores, differences = stage7.score_models(table, models, X_test, y_test, config)
level = inspect.signature(paired_difference).parameters["level"].default
print(f"{level:.0%} intervals, {config.n_boot} bootstrap resamples of the {len(test)} test rows "
      f"(one row is {1 / len(test):.4f} of accuracy)")
print(f"{'':>25} {'accuracy':^21} {'macro-F1':^21} {'ROC-AUC':^21} {'nnlab − this, accuracy':^23}")
for name, metrics in scores.items():
    row = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in metrics.values()]
    if name in differences:
        d, lo, hi = differences[name]
        row.append(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    print(f"{name:>25} " + " ".join(f"{cell:^21}" for cell in row))
ours = final.predict(X_test)
show(plots.confusion(OUT / "confusion.png", confusion_matrix(y_test, ours, labels=mlp.classes_),
                     f"Test confusion matrix (n = {len(test)})", labels=table.classes))

# %% [markdown]
# Read the intervals before the point estimates: on a test set this size one row moves the accuracy
# by the amount printed above the table, and an interval of the difference that holds 0 says the
# test rows cannot rank the two models, whatever their point estimates say.
#
# **Try this:** tune a recipe without touching the test rows. Change `alpha` (the L2 strength) in
# the winning recipe and compare its cross-validation loss on the non-test rows with the winner's.

# %%
alpha = 1.0  # try 0.0, 0.01, 10.0
trial = stage7.make_pipeline(table, config, **{**best["params"], "alpha": alpha})
folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
cv = -cross_val_score(trial, X_pool, y_pool, cv=folds, scoring="neg_log_loss", n_jobs=config.n_jobs)
print(f"alpha {alpha:g}: CV loss {cv.mean():.4f}")
print(f"the winner, alpha {best['params']['alpha']:g}: CV loss {best['cv_loss']:.4f}")
