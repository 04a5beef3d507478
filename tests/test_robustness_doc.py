"""docs/robustness.md is produced from these cases: every public entry point, fed bad input.

Each case runs here; its response (the exception and message, or the exit status and
stderr line) fills the table.  The test fails if the committed document differs, so
the table always shows what the code does.  Regenerate with:

    python tests/test_robustness_doc.py --write
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
from misuse_cases import EXTRA, hostile_checkpoints, listing, signal_a_run

import nnlab
from nnlab.cli import main
from nnlab.data import load_mnist_dir, read_idx
from nnlab.data.tabular import read_csv, read_csv_table
from nnlab.estimators import MLPClassifier, MLPRegressor

DOC = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
NAN = np.array([[1.0, np.nan]])


def _diverging_fit():
    line = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    X = np.linspace(-2, 2, 20).reshape(-1, 1)
    return nnlab.fit(line, nnlab.MSELoss(), nnlab.SGD(line.parameters(), lr=5.0), X, 3 * X, epochs=1000,
                     name="demo")


def _with_list_weights():
    lin = nnlab.Linear(3, 2)
    lin.W = [[1, 0, 0], [0, 1, 0]]
    return lin


def _fit_with(**options):
    """``fit`` on a tiny regression problem with ``options`` replacing its defaults."""
    line = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    parts = {"loss_fn": nnlab.MSELoss(), "epochs": 1, "X": np.ones((4, 2)), "Y": np.ones((4, 1)), **options}
    loss_fn, X, Y = parts.pop("loss_fn"), parts.pop("X"), parts.pop("Y")
    return nnlab.fit(line, loss_fn, nnlab.SGD(line.parameters(), lr=0.1), X, Y, **parts)


def _nan_gradient_clipped():
    lin = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    lin.dW[0, 0] = np.nan
    return nnlab.clip_grad_norm(lin.parameters(), 1.0)


def _saved_with_nan(tmp: Path):
    net = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    net.layers[0].W[0, 0] = np.nan
    return net.save(tmp / "diverged.npz")


def _saved_then_loaded_without_suffix(tmp: Path):
    nnlab.make_mlp([3, 2], rng=np.random.default_rng(0)).save(tmp / "m2")
    return type(nnlab.load(tmp / "m2")).__name__


def _eval_with_infinite_running_var():
    bn = nnlab.BatchNorm1d(3)
    bn.running_var[0] = np.inf
    bn.eval()
    return bn.forward(np.ones((2, 3)))


def _scheduler_of_another_optimizer():
    line = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    other = nnlab.SGD(line.parameters(), lr=0.1)
    return _fit_with(scheduler=nnlab.StepLR(other, step_size=1))


def plot_series_name(xs, ys, tmp: Path) -> str:
    return nnlab.plot_series(xs, ys, path=tmp / "curve.png").name


def _batch_norm_last_row():
    net = nnlab.make_mlp([2, 3, 1], norm="batch", rng=np.random.default_rng(0))
    return nnlab.fit(net, nnlab.MSELoss(), nnlab.SGD(net.parameters(), lr=0.1), np.ones((3, 2)), np.ones((3, 1)),
                     epochs=1, batch_size=2, rng=np.random.default_rng(0))


def _cases(tmp: Path):
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    fresh = nnlab.Linear(3, 2)
    (tmp / "bad.csv").write_text("a,b,y\n1,oops,0\n2,3,1\n")
    (tmp / "gaps.csv").write_text("a,b,y\n1,,0\n2,NA,1\n3,4,0\n")
    (tmp / "one.csv").write_text("a,y\n1,cat\n2,cat\n")
    (tmp / "stray.csv").write_text("a,b,y\n1,oops,0\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))
    (tmp / "ids.csv").write_text("name,x,y\n" + "".join(f"person {i},{i % 7},{i % 2}\n" for i in range(30)))
    (tmp / "semi.csv").write_text("a;b;y\n" + "".join(f"{i % 4};{i % 3};{i % 2}\n" for i in range(30)))
    (tmp / "wrongsep.csv").write_text("a;b;y\n1;2\n3;4;5\n")
    (tmp / "huge.csv").write_text("a,big,y\n" + "".join(f"{i % 4},{i % 3 + 1}e200,{i % 2}\n" for i in range(30)))
    (tmp / "notarget.csv").write_text("a,y\n" + "".join(f"{i % 5},{'' if i % 4 == 0 else i % 2}\n" for i in range(30)))
    (tmp / "floaty.csv").write_text("a,y\n" + "".join(f"{i % 5},{i / 7:.3f}\n" for i in range(30)))
    (tmp / "new.csv").write_text("x,colour\n1,red\n2,Red\n3,purple\n")
    (tmp / "eu.csv").write_text("a;b;y\n" + "".join(f"{i % 4},{i};1.00{i % 9},5;{i % 2}\n" for i in range(30)))
    (tmp / "ambiguous.csv").write_text("a;b;y\n" + "".join(f"{'10,725' if i % 2 else '19'};{i % 3};{i % 2}\n"
                                                         for i in range(30)))
    (tmp / "dotted.csv").write_text("a;b;y\n" + "".join(f"{i % 4},5;{1 + i % 3}.{250 * (i % 4):03d};{i % 2}\n"
                                                      for i in range(30)))
    (tmp / "pointed.csv").write_text("a;b;y\n" + "".join(f"{i % 4},5;{1 + i % 3}.5;{i % 2}\n" for i in range(30)))
    (tmp / "packed.csv").write_bytes(gzip.compress(b"a,y\n1,0\n"))
    (tmp / "words.csv").write_text("a,b,y\n" + "".join(f"{i % 4},{'unknown' if i % 4 == 0 else i},{i % 2}\n"
                                                     for i in range(30)))
    (tmp / "cases.csv").write_text("a,y\n" + "".join(f"{i % 4},{['Yes', 'no', 'No'][i % 3]}\n" for i in range(30)))
    (tmp / "index.csv").write_text(",a,y\n" + "".join(f"{i},{i % 4},{i % 2}\n" for i in range(30)))
    (tmp / "unnamed.csv").write_text(",a,y\n" + "".join(f"{i * i},{i % 4},{i % 2}\n" for i in range(30)))
    model = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    model.save(tmp / "s7.npz", extra={"stage": "7", "task": "classification", "classes": ["no", "yes"],
                                      "preprocess": {"numeric": {"columns": ["x"], "prescale": [0], "fill": [0.0],
                                                                 "mean": [0.0], "scale": [1.0]},
                                                     "categorical": {"fill": "(missing)", "columns": [
                                                         {"column": "colour", "levels": ["blue", "red"],
                                                          "infrequent": []}]}}})
    iris = np.tile(np.eye(3), (10, 1)), np.arange(30) % 3
    (tmp / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp / "short.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    params = lin.parameters()
    return [
        ("Linear", "forward with the wrong width (4, 5)", lambda: lin.forward(np.ones((4, 5)))),
        ("Linear", "forward with a 3-D array", lambda: lin.forward(np.ones((2, 2, 3)))),
        ("Linear", "forward with NaN", lambda: lin.forward(np.array([[1.0, np.nan, 0.0]]))),
        ("Linear", "forward with strings", lambda: lin.forward(np.array([["a", "b", "c"]]))),
        ("Linear", "backward before forward", lambda: fresh.backward(np.ones((1, 2)))),
        ("Linear", "in_dim = 0", lambda: nnlab.Linear(0, 2)),
        ("MLP", 'nonlin="swish"', lambda: nnlab.MLP(2, 3, 1, nonlin="swish")),
        ("Conv2d", "flat rows (4, 9) instead of images", lambda: nnlab.Conv2d(1, 2, 3).forward(np.ones((4, 9)))),
        ("Conv2d", "2 channels into a 1-channel layer",
         lambda: nnlab.Conv2d(1, 2, 3).forward(np.ones((1, 2, 5, 5)))),
        ("Conv2d", "4x4 images, 5x5 kernel", lambda: nnlab.Conv2d(1, 2, 5).forward(np.ones((1, 1, 4, 4)))),
        ("Conv2d", "kernel_size (3, 3, 3)", lambda: nnlab.Conv2d(1, 2, (3, 3, 3))),
        ("Conv2d", "backward before forward", lambda: nnlab.Conv2d(1, 2, 3).backward(np.ones((1, 2, 1, 1)))),
        ("MaxPool2d", "stride 0", lambda: nnlab.MaxPool2d(2, 0)),
        ("MaxPool2d", "-inf hidden in a window", lambda: nnlab.MaxPool2d(2).forward(np.array([[[[1.0, -np.inf],
                                                                                                 [0.0, 0.0]]]]))),
        ("Flatten", "a 1-D array", lambda: nnlab.Flatten().forward(np.ones(3))),
        ("make_cnn", "an even kernel_size 4", lambda: nnlab.make_cnn(28, kernel_size=4)),
        ("make_cnn", "2x2 images", lambda: nnlab.make_cnn(2)),
        ("Sequential", "a layer that is not a Module", lambda: nnlab.Sequential(lin, "relu")),
        ("Sequential", "Linear(3, 4), ReLU(), Linear(5, 1)",
         lambda: nnlab.Sequential(nnlab.Linear(3, 4), nnlab.ReLU(), nnlab.Linear(5, 1))),
        ("Linear", "W reassigned as a list", lambda: _with_list_weights().forward(np.ones((1, 3)))),
        ("ReLU", "backward before forward", lambda: nnlab.ReLU().backward(np.ones(2))),
        ("Tanh", "backward before forward", lambda: nnlab.Tanh().backward(np.ones(2))),
        ("Module", "forward on the bare base class", lambda: nnlab.Module().forward(np.ones(2))),
        ("Param", "value of a parameter (valid use)", lambda: params[0].value.shape),
        ("make_mlp", "a single width [4]", lambda: nnlab.make_mlp([4])),
        ("relu", "NaN input", lambda: nnlab.relu(NAN)),
        ("relu_backward", "shapes (2, 3) and (3, 2)", lambda: nnlab.relu_backward(np.ones((2, 3)), np.ones((3, 2)))),
        ("tanh", "object array", lambda: nnlab.tanh(np.array([object()]))),
        ("tanh_backward", "inf in dout", lambda: nnlab.tanh_backward(np.ones(2), np.array([1.0, np.inf]))),
        ("softmax", "logits of +-1e4 (valid)", lambda: nnlab.softmax(np.array([[1e4, -1e4]])).round(3).tolist()),
        ("softmax", "no classes, shape (2, 0)", lambda: nnlab.softmax(np.ones((2, 0)))),
        ("log_softmax", "range beyond float max", lambda: nnlab.log_softmax(np.array([[1e308, -1e308]]))),
        ("cross_entropy", "probs (2, 3) vs Y_true (2, 4)", lambda: nnlab.cross_entropy(np.full((2, 3), 1 / 3),
                                                                                        np.zeros((2, 4)))),
        ("cross_entropy", "a probability of 0 on the true class (valid)",
         lambda: round(nnlab.cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])), 3)),
        ("cross_entropy", "logits passed instead of probabilities",
         lambda: nnlab.cross_entropy(np.array([[3.0, -1.0]]), np.array([[1.0, 0.0]]))),
        ("softmax_cross_entropy_backward", "mismatched shapes",
         lambda: nnlab.softmax_cross_entropy_backward(np.full((2, 2), 0.5), np.zeros((3, 2)))),
        ("mse", "empty arrays", lambda: nnlab.mse(np.zeros((0, 1)), np.zeros((0, 1)))),
        ("MSELoss", "values whose square overflows", lambda: nnlab.MSELoss()(np.array([1e200]), np.array([-1e200]))),
        ("SoftmaxCrossEntropyLoss", "1-D logits", lambda: nnlab.SoftmaxCrossEntropyLoss()(np.ones(3), np.ones(3))),
        ("L2Penalty", "lam = -1", lambda: nnlab.L2Penalty(-1)),
        ("one_hot", "label -1", lambda: nnlab.one_hot(np.array([-1, 0]), 3)),
        ("one_hot", "label 3 with C = 3", lambda: nnlab.one_hot(np.array([0, 3]), 3)),
        ("one_hot", "labels 0.5", lambda: nnlab.one_hot(np.array([0.5]), 3)),
        ("standardize_features", "1-D X", lambda: nnlab.standardize_features(np.ones(3))),
        ("unstandardize_linear_weights", "sigma of 0",
         lambda: nnlab.unstandardize_linear_weights(np.ones(2), 0.0, np.zeros(2), np.zeros(2))),
        ("assert_close", "shape mismatch (prints, returns False)",
         lambda: nnlab.assert_close("demo", np.ones(2), np.ones(3))),
        ("plot_series", "xs and ys of different lengths", lambda: nnlab.plot_series([0, 1], [1.0])),
        ("seed_everything", "seed -1", lambda: nnlab.seed_everything(-1)),
        ("SGD", "lr = 0", lambda: nnlab.SGD(params, lr=0)),
        ("SGD", "momentum = 1", lambda: nnlab.SGD(params, lr=0.1, momentum=1)),
        ("Adam", "lr = nan", lambda: nnlab.Adam(params, lr=float("nan"))),
        ("Optimizer", "empty parameter list", lambda: nnlab.SGD([], lr=0.1)),
        ("SGD", "nesterov=True without momentum", lambda: nnlab.SGD(params, lr=0.1, nesterov=True)),
        ("RMSprop", "alpha = 1", lambda: nnlab.RMSprop(params, lr=0.01, alpha=1.0)),
        ("AdamW", "weight_decay = -0.01", lambda: nnlab.AdamW(params, weight_decay=-0.01)),
        ("StepLR", "step_size = 0", lambda: nnlab.StepLR(nnlab.SGD(params, lr=0.1), step_size=0)),
        ("StepLR", "a list instead of an optimizer", lambda: nnlab.StepLR([0.1], step_size=2)),
        ("CosineAnnealingLR", "eta_min = -1", lambda: nnlab.CosineAnnealingLR(nnlab.SGD(params, lr=0.1), 10, -1)),
        ("clip_grad_norm", "max_norm = inf", lambda: nnlab.clip_grad_norm(params, float("inf"))),
        ("Dropout", "p = 1.5", lambda: nnlab.Dropout(1.5)),
        ("Dropout", "backward before forward", lambda: nnlab.Dropout().backward(np.ones((1, 2)))),
        ("BatchNorm1d", "one row in training mode", lambda: nnlab.BatchNorm1d(3).forward(np.ones((1, 3)))),
        ("BatchNorm1d", "input of width 4 for 3 features", lambda: nnlab.BatchNorm1d(3).forward(np.ones((2, 4)))),
        ("BatchNorm1d", "momentum = 2", lambda: nnlab.BatchNorm1d(3, momentum=2)),
        ("Sigmoid", "backward before forward", lambda: nnlab.Sigmoid().backward(np.ones(2))),
        ("LeakyReLU", "negative_slope = nan", lambda: nnlab.LeakyReLU(float("nan"))),
        ("GELU", 'approximate="fast"', lambda: nnlab.GELU(approximate="fast")),
        ("sigmoid", "x = -1000 (valid: no overflow)", lambda: nnlab.sigmoid(np.array([-1000.0, 1000.0])).tolist()),
        ("sigmoid_backward", "NaN in x", lambda: nnlab.sigmoid_backward(NAN, np.ones((1, 2)))),
        ("leaky_relu", "negative_slope = 'a'", lambda: nnlab.leaky_relu(np.ones(2), "a")),
        ("leaky_relu_backward", "shapes (2,) and (3,)", lambda: nnlab.leaky_relu_backward(np.ones(2), np.ones(3))),
        ("gelu", "approximate='erf'", lambda: nnlab.gelu(np.ones(2), approximate="erf")),
        ("gelu_backward", "x = -1e200 (valid: the tail is 0, not NaN)",
         lambda: nnlab.gelu_backward(np.array([-1e200]), np.ones(1), "tanh").tolist()),
        ("make_mlp", 'norm="layer"', lambda: nnlab.make_mlp([4, 3, 2], norm="layer")),
        ("make_mlp", "dropout = -0.1", lambda: nnlab.make_mlp([4, 3, 2], dropout=-0.1)),
        ("fit", "BatchNorm1d and a last batch of one row", _batch_norm_last_row),
        ("gradcheck", "a float32 model",
         lambda: nnlab.gradcheck(nnlab.Linear(2, 2, dtype=np.float32), np.ones((1, 2)))),
        ("gradcheck", "a loss without its target", lambda: nnlab.gradcheck(nnlab.MSELoss(), np.ones((1, 2)))),
        ("gradcheck", "relu alone, without its backward", lambda: nnlab.gradcheck(nnlab.relu, np.ones((1, 2)))),
        ("gradcheck", "h = 0", lambda: nnlab.gradcheck(nnlab.Linear(2, 2), np.ones((1, 2)), h=0)),
        ("cross_entropy", "targets whose rows do not sum to 1",
         lambda: nnlab.cross_entropy(np.full((2, 2), 0.5), np.ones((2, 2)))),
        ("fit", "an optimizer over another model's parameters",
         lambda: nnlab.fit(lin, nnlab.MSELoss(), nnlab.SGD(fresh.parameters(), lr=0.1), np.ones((2, 3)),
                           np.ones((2, 2)), epochs=1)),
        ("GradcheckResult", "an empty result (valid)", lambda: nnlab.GradcheckResult().passed),
        ("numerical_gradient", "a float32 array", lambda: nnlab.numerical_gradient(lambda: 0.0, np.ones(2, "f4"))),
        ("rel_error", "shapes (2,) and (3,)", lambda: nnlab.rel_error(np.ones(2), np.ones(3))),
        ("fit", "X with NaN", lambda: nnlab.fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1),
                                                np.array([[np.nan, 0, 0]]), np.zeros((1, 2)), epochs=1)),
        ("fit", "X and Y with different row counts", lambda: nnlab.fit(lin, nnlab.MSELoss(), nnlab.SGD(
            lin.parameters(), lr=0.1), np.zeros((3, 3)), np.zeros((2, 2)), epochs=1)),
        ("fit", "lr = 5 on a line (diverges; the history says so)", lambda: _diverging_fit().message),
        ("fit", "batch_size = 0", lambda: _fit_with(batch_size=0)),
        ("fit", "batch_size = -1", lambda: _fit_with(batch_size=-1)),
        ("fit", "epochs = -3", lambda: _fit_with(epochs=-3)),
        ("fit", "the class MSELoss instead of MSELoss()", lambda: _fit_with(loss_fn=nnlab.MSELoss)),
        ("SoftmaxCrossEntropyLoss", "float labels [0.0, 1.0]",
         lambda: nnlab.SoftmaxCrossEntropyLoss()(np.zeros((2, 2)), np.array([0.0, 1.0]))),
        ("SoftmaxCrossEntropyLoss", "boolean labels",
         lambda: nnlab.SoftmaxCrossEntropyLoss()(np.zeros((2, 2)), np.array([True, False]))),
        ("SGD", "lr = '0.1' (text)", lambda: nnlab.SGD(params, lr="0.1")),
        ("EarlyStopping", "patience 0 (valid)", lambda: nnlab.EarlyStopping(patience=0).patience),
        ("History", "a fresh history (valid)", lambda: nnlab.History().diverged),
        ("SGD", "plain arrays [lin.W, lin.b]", lambda: nnlab.SGD([lin.W, lin.b], lr=0.1)),
        ("Adam", "a module instead of its parameters", lambda: nnlab.Adam(lin)),
        ("SGD", "the method lin.parameters, not called", lambda: nnlab.SGD(lin.parameters, lr=0.1)),
        ("SGD", "the parameters listed twice", lambda: nnlab.SGD(params + params, lr=0.1)),
        ("L2Penalty", "called on a model instead of its parameters", lambda: nnlab.L2Penalty(0.1)(lin)),
        ("fit", "a scheduler bound to another optimizer", _scheduler_of_another_optimizer),
        ("fit", "the function nnlab.cross_entropy as loss_fn", lambda: _fit_with(loss_fn=nnlab.cross_entropy)),
        ("fit", "X as a masked array with a masked entry",
         lambda: _fit_with(X=np.ma.masked_values([[1.0, -999.0]] * 4, -999.0))),
        ("Linear", "a masked input with a masked entry",
         lambda: lin.forward(np.ma.masked_values(np.array([[1.0, -999.0, 2.0]]), -999.0))),
        ("BatchNorm1d", "inputs near 1e160 (the batch variance overflows)",
         lambda: nnlab.BatchNorm1d(2).forward(np.array([[1e160, 1.0], [-1e160, 2.0]]))),
        ("BatchNorm1d", "evaluation with an infinite running_var", _eval_with_infinite_running_var),
        ("Sequential", "astype(int)", lambda: nnlab.make_mlp([3, 2]).astype(int)),
        ("Sequential", "astype('bogus')", lambda: nnlab.make_mlp([3, 2]).astype("bogus")),
        ("numerical_gradient", "an int array", lambda: nnlab.numerical_gradient(lambda: 0.0, np.array([1, 2]))),
        ("EarlyStopping", "patience = -1", lambda: nnlab.EarlyStopping(patience=-1)),
        ("clip_grad_norm", "a NaN in one gradient", _nan_gradient_clipped),
        ("clip_grad_norm", "the model instead of its parameters", lambda: nnlab.clip_grad_norm(lin, 1.0)),
        ("cross_entropy", "masked labels with a masked entry",
         lambda: nnlab.cross_entropy(np.full((2, 2), 0.5), np.ma.array([0, 1], mask=[False, True]))),
        ("one_hot", "masked labels with a masked entry", lambda: nnlab.one_hot(np.ma.array([0, 1], mask=[0, 1]), 2)),
        ("plot_series", "ys a generator (valid: read once)",
         lambda: plot_series_name(range(3), (i * i for i in range(3)), tmp)),
        ("save", "weights holding NaN", lambda: _saved_with_nan(tmp)),
        ("load", "'m2' after save('m2') wrote m2.npz (valid)", lambda: _saved_then_loaded_without_suffix(tmp)),
        ("load", "a missing file", lambda: nnlab.load(tmp / "missing.npz")),
        ("load", "a file that is not a zip", lambda: nnlab.load(tmp / "junk.npz")),
        ("load_checkpoint", "a directory", lambda: nnlab.load_checkpoint(tmp)),
        ("CheckpointError", "is a ValueError (valid)", lambda: issubclass(nnlab.CheckpointError, ValueError)),
        ("NnlabError", "base of every nnlab error (valid)",
         lambda: all(issubclass(e, nnlab.NnlabError) for e in (nnlab.NnlabValueError, nnlab.NnlabTypeError,
                                                                nnlab.NnlabRuntimeError, nnlab.CheckpointError))),
        ("NnlabValueError", "Linear(0, 1)", lambda: nnlab.Linear(0, 1)),
        ("NnlabTypeError", "Linear('3', 1)", lambda: nnlab.Linear("3", 1)),
        ("NnlabRuntimeError", "Linear.backward before forward", lambda: nnlab.Linear(2, 2).backward(np.ones((1, 2)))),
        ("read_idx", "a truncated IDX file", lambda: read_idx(tmp / "short.idx")),
        ("load_mnist_dir", "a folder without MNIST files", lambda: load_mnist_dir(tmp)),
        ("read_csv_table", "text with categorical='none'",
         lambda: read_csv_table(tmp / "bad.csv", "y", categorical="none")),
        ("read_csv_table", "one stray word in a numeric column", lambda: read_csv_table(tmp / "stray.csv", "y")),
        ("read_csv_table", "missing feature values (valid: imputed later)",
         lambda: read_csv_table(tmp / "gaps.csv", "y").X["b"].isna().sum()),
        ("read_csv_table", "rows with a missing target (valid: dropped, noted)",
         lambda: read_csv_table(tmp / "notarget.csv", "y").notes),
        ("read_csv_table", "a single-class target", lambda: read_csv_table(tmp / "one.csv", "y")),
        ("read_csv_table", "a names column, one value per row (valid: dropped, noted)",
         lambda: read_csv_table(tmp / "ids.csv", "y").columns_dropped),
        ("read_csv_table", "a ';'-separated file (valid: sniffed)",
         lambda: read_csv_table(tmp / "semi.csv", "y").features_used),
        ("read_csv_table", "a column near 1e200 (valid: exact power-of-two rescaling)",
         lambda: read_csv_table(tmp / "huge.csv", "y").prescale),
        ("read_csv_table", "a float target (valid: the task and why)",
         lambda: read_csv_table(tmp / "floaty.csv", "y").task_reason),
        ("read_csv_table", "decimal commas in a ';'-separated file (valid: read as decimals, noted)",
         lambda: read_csv_table(tmp / "eu.csv", "y").notes),
        ("read_csv_table", "'10,725' next to '19' in a ';'-separated file (thousands or decimal comma?)",
         lambda: read_csv_table(tmp / "ambiguous.csv", "y")),
        ("read_csv_table", "the same with decimal='point' (valid: thousands commas)",
         lambda: read_csv_table(tmp / "ambiguous.csv", "y", decimal="point").X["a"].iloc[:2].tolist()),
        ("read_csv_table", "'1.000', '2.250' in a column pandas reads as floats, decimal-comma file (valid: noted)",
         lambda: read_csv_table(tmp / "dotted.csv", "y").notes[0]),
        ("read_csv_table", "'1.5' in such a column (a decimal point in a decimal-comma file)",
         lambda: read_csv_table(tmp / "pointed.csv", "y")),
        ("read_csv", "gzip-compressed bytes in a file named .csv", lambda: read_csv(tmp / "packed.csv")),
        ("read_csv_table", "a word in a quarter of a numeric column's cells",
         lambda: read_csv_table(tmp / "words.csv", "y")),
        ("read_csv_table", "the same with na_values=['unknown'] (valid: missing, imputed later, noted)",
         lambda: read_csv_table(tmp / "words.csv", "y", na_values=["unknown"]).notes),
        ("read_csv_table", "target labels that differ only in case", lambda: read_csv_table(tmp / "cases.csv", "y")),
        ("read_csv", "a saved pandas index, 0 to n-1 (valid: dropped, noted)",
         lambda: read_csv(tmp / "index.csv").attrs["read_notes"]),
        ("read_csv", "an unnamed first column that is no index", lambda: read_csv(tmp / "unnamed.csv")),
        ("MLPClassifier", "fit on one class", lambda: MLPClassifier().fit(np.ones((4, 2)), np.zeros(4))),
        ("MLPClassifier", "learning_rate_init = 1e300 (diverges)",
         lambda: MLPClassifier(solver="sgd", learning_rate_init=1e300, max_iter=5, random_state=0).fit(*iris)),
        ("MLPClassifier", "solver='lbfgs'", lambda: MLPClassifier(solver="lbfgs").fit(*iris)),
        ("MLPRegressor", "a feature near 1e200", lambda: MLPRegressor().fit(np.array([[1.0], [2e200]]), [0.0, 1.0])),
        ("MLPRegressor", "predict before fit", lambda: MLPRegressor().predict(np.ones((1, 2)))),
        ("nnlab run", "unknown stage 9", ["run", "9"]),
        ("nnlab run", "--lr -1", ["run", "1", "--lr", "-1"]),
        ("nnlab run", "--epochs 0", ["run", "2", "--epochs", "0"]),
        ("nnlab run", "--lam on stage 1", ["run", "1", "--lam", "0.1"]),
        ("nnlab run", "--mnist-dir that does not exist", ["run", "5", "--mnist-dir", "/no/such/dir"]),
        ("nnlab run", "--csv that does not exist", ["run", "7", "--csv", "/no/such.csv", "--target", "y"]),
        ("nnlab run", "--csv without --target", ["run", "7", "--csv", "x.csv"]),
        ("nnlab run", "--csv - (standard input)", ["run", "7", "--csv", "-", "--target", "y"]),
        ("nnlab run", "--target differing from a column only in case",
         ["run", "7", "--csv", str(tmp / "bad.csv"), "--target", "Y"]),
        ("nnlab run", "--target not in the CSV", ["run", "7", "--csv", str(tmp / "bad.csv"), "--target", "zz"]),
        ("nnlab run", "a header that holds another separator",
         ["run", "7", "--csv", str(tmp / "wrongsep.csv"), "--target", "y"]),
        ("nnlab run", "--task classification on a float target",
         ["run", "7", "--csv", str(tmp / "floaty.csv"), "--target", "y", "--task", "classification"]),
        ("nnlab run", "--save with 'all'", ["run", "all", "--save", "m.npz"]),
        ("nnlab run", "--dataset together with --csv",
         ["run", "7", "--csv", str(tmp / "semi.csv"), "--target", "y", "--dataset", "wine"]),
        ("nnlab predict", "a model file that does not exist", ["predict", "--model", "/no/m.npz", "--csv", "x.csv"]),
        ("nnlab predict", "a checkpoint that is not a zip",
         ["predict", "--model", str(tmp / "junk.npz"), "--csv", str(tmp / "new.csv")]),
        ("nnlab predict", "a category unseen in training, --strict",
         ["predict", "--model", str(tmp / "s7.npz"), "--csv", str(tmp / "new.csv"), "--strict"]),
    ]


def _misuse_cases(tmp: Path):
    """(topic, what, action) for issue 13's careless user: ``action`` is a command line that must be refused
    (see :func:`_refuse`) or a callable that does something and describes what happened."""
    inp = tmp / "in"
    inp.mkdir()
    model, csv = inp / "m.npz", inp / "x.csv"
    nnlab.MLP(2, 3, 2, rng=np.random.default_rng(0)).save(model, extra=EXTRA)
    csv.write_text("a,b\n1,2\n3,4\n")
    (inp / "text.csv").write_text("a,b,y\n1,oops,0\n2,3,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(30)))
    (inp / "plain").write_text("a file, not a folder")
    (inp / "latin1.csv").write_bytes("a,name,y\n1,caf\u00e9,0\n".encode("latin-1"))
    (inp / "dirty.csv").write_text("a,y\n" + "".join(f"{i},{'oops' if i == 5 else i / 3}\n" for i in range(40)))
    (inp / "comment.csv").write_text("a,b,y\n1,2,0\n# halfway\n3,4,1\n")
    (inp / "somedir").mkdir()
    os.mkfifo(inp / "fifo")
    predict = ["predict", "--model", str(model), "--csv", str(csv)]
    file, folder, fifo = str(inp / "plain"), str(inp / "somedir"), str(inp / "fifo")
    rows = [
        ("files", "predict `--out` a symbolic link", lambda: _write_through_a_link(tmp, predict)),
        ("files", "predict `--out` a FIFO", [*predict, "--out", fifo]),
        ("files", "predict `--out existdir/`", [*predict, "--out", folder + "/"]),
        ("files", "predict `--out existdir`", [*predict, "--out", folder]),
        ("files", "predict `--out /proc/...`", [*predict, "--out", "/proc/nnlab-misuse/p.csv"]),
        ("files", "`run 5 --save somedir/`", ["run", "5", "--save", folder + "/"]),
        ("files", "`run 5 --save` a FIFO", ["run", "5", "--save", fifo]),
        ("files", "`run 5 --save /proc/foo/m.npz`", ["run", "5", "--save", "/proc/foo/m.npz"]),
        ("files", "`run 1 --out some_file`", ["run", "1", "--out", file]),
        ("files", "`run 1 --out /proc/foo`", ["run", "1", "--out", "/proc/foo"]),
        ("files", "`report --report` a directory", ["report", "--report", folder, "--out", str(tmp / "new")]),
        ("files", "`report --figures` a file", ["report", "--figures", file, "--out", str(tmp / "new")]),
        ("input", "`run 7 --csv` a FIFO", ["run", "7", "--csv", fifo, "--target", "y"]),
        ("input", "`run 7` a text value with `--categorical none`",
         ["run", "7", "--csv", str(inp / "text.csv"), "--target", "y", "--categorical", "none"]),
        ("input", "`run 7` a Latin-1 file", ["run", "7", "--csv", str(inp / "latin1.csv"), "--target", "y"]),
        ("input", "`run 7` a numeric target with a stray word",
         ["run", "7", "--csv", str(inp / "dirty.csv"), "--target", "y"]),
        ("input", "`run 7` a comment line inside the table",
         ["run", "7", "--csv", str(inp / "comment.csv"), "--target", "y"]),
        ("input", "`run 7` a target column that is not there", ["run", "7", "--csv", str(inp / "text.csv"),
                                                                "--target", "zz"]),
        ("signals", "SIGTERM during `run 5`", lambda: _signal(tmp / "term", signal.SIGTERM)),
        ("signals", "SIGKILL during `run 5`, then `run 1` into the same `--out`", lambda: _killed_then_rerun(tmp)),
        ("resources", "`run 5 --hidden 100000000`", ["run", "5", "--hidden", "100000000", "--jobs", "1"]),
        ("resources", "`run 3 --lr 1000` (diverges: NumPy overflows everywhere)", lambda: _diverging_run(tmp)),
    ]
    for name, (path, _) in hostile_checkpoints(inp).items():
        rows.append(("checkpoints", f"predict `--model`: {name}", ["predict", "--model", str(path), "--csv", str(csv)]))
        if name.startswith("5,000"):
            rows.append(("checkpoints", f"`run 7 --load`: {name}", ["run", "7", "--load", str(path)]))
    return rows


def _quiet_main(argv) -> tuple[int, str, str]:
    """``nnlab argv`` in this process: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _write_through_a_link(tmp: Path, predict) -> str:
    target, link = tmp / "real.csv", tmp / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target.name)
    code, out, err = _quiet_main([*predict, "--out", link])
    kept = link.is_symlink() and os.readlink(link) == target.name
    return (f"exit {code}: `{out.strip()}`; the link is {'kept' if kept else 'GONE'}, its target now starts "
            f"`{target.read_text().splitlines()[0]}`")


def _signal(out: Path, signum) -> str:
    code, err = signal_a_run(out, "5", signum, "--jobs", "1")
    left = [name for name, _ in listing(out)] if out.exists() else []
    return f"exit {code}: `{err.strip()}`; left in `--out`: {', '.join(left) or 'nothing (not even the folder)'}"


def _killed_then_rerun(tmp: Path) -> str:
    out = tmp / "killed"
    code, _ = signal_a_run(out, "5", signal.SIGKILL, "--jobs", "1")
    left = ", ".join(name for name, _ in listing(out) if "/" not in name)
    code, _, err = _quiet_main(["run", "1", "--quick", "--no-progress", "--out", out])
    return (f"the kill leaves {left}; the next run exits {code} after one line: `{err.strip()}`, and `--out` then "
            f"holds {', '.join(name for name, _ in listing(out) if '/' not in name)}")


def _diverging_run(tmp: Path) -> str:
    code, out, err = _quiet_main(["run", "3", "--quick", "--lr", "1000", "--jobs", "1", "--no-progress", "--out",
                                  tmp / "diverged"])
    return f"exit {code}; stderr {'empty' if not err else repr(err)}; the summary says DIVERGED: {'DIVERGED' in out}"


def _refuse(argv, tmp: Path) -> str:
    """Run a command that must be refused: exit 2, one line, and nothing in ``tmp`` created or changed."""
    before = listing(tmp)
    aimed = argv[0] == "run" and "--out" not in argv
    code, _, err = _quiet_main([*argv, "--out", tmp / "new" / "runs"] if aimed else argv)
    line = re.sub(r"only \S+ GB is available", "only (this machine's) GB is available", err.strip())
    assert code == 2 and err.count("\n") == 1 and listing(tmp) == before, (argv, code, err)
    return f"exit 2: `{line}`; nothing created".replace(str(tmp), "<tmp>")


def _respond(action, tmp: Path) -> str:
    if isinstance(action, list):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*action, "--out", str(tmp / "out")] if action[0] == "run" else action)
        line = err.getvalue().strip().replace(str(tmp), "<tmp>")
        assert code == 2 and "\n" not in line, (action, code, line)
        return f"exit 2: `{line}`"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            value = action()
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        message = str(exc).replace(str(tmp), "<tmp>").replace("|", "\\|")
        return f"{type(exc).__name__}: {message}"
    return f"returns `{value!r}`"


def render() -> str:
    """The document, from running every case now."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [(who, what, _respond(action, tmp)) for who, what, action in _cases(tmp)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        misuse = [(topic, what, _refuse(action, tmp) if isinstance(action, list) else
                   action().replace(str(tmp), "<tmp>")) for topic, what, action in _misuse_cases(tmp)]
    lines = [
        "# Robustness: bad input and the response",
        "",
        "Every public entry point fed input it cannot use, and what it answers. This table is generated by",
        "`tests/test_robustness_doc.py`, which runs every case; CI fails if this file differs from a fresh run.",
        "Random inputs beyond these (shapes, dtypes, NaN/inf, empty, 0-d and 3-d arrays, malformed CSVs,",
        "random command lines) are thrown at the same entry points by `tests/test_fuzz.py` (hypothesis).",
        "",
        "| entry point | input | response |",
        "|---|---|---|",
    ]
    lines += [f"| `{who}` | {what} | {resp} |" for who, what, resp in rows]
    lines += [
        "",
        "**Misuse: files, signals, checkpoints and resources.** The `nnlab` command as a careless user runs it,",
        "in a temporary folder `<tmp>`. Each refusal is checked",
        "while this table is made: exit status 2, one line on stderr, and every file and folder under `<tmp>`",
        "as it was before (a `run` is pointed at `--out <tmp>/new/runs`, which must not appear). Hostile",
        "checkpoints are made by `tests/misuse_cases.py`; `tests/test_misuse.py` also measures what reading",
        "them costs.",
        "",
        "| topic | input | response |",
        "|---|---|---|",
    ]
    lines += [f"| {topic} | {what} | {resp.replace('|', chr(92) + '|')} |" for topic, what, resp in misuse]
    return "\n".join(lines) + "\n"


def test_every_public_name_is_covered():
    covered = {who for who, _, _ in _cases(Path(tempfile.gettempdir()))}
    missing = [name for name in nnlab.__all__ if name not in covered]
    assert not missing, f"add robustness cases for {missing}"


def test_document_matches_the_code():
    assert DOC.read_text() == render(), "docs/robustness.md is stale: python tests/test_robustness_doc.py --write"


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOC.write_text(render())
        print(f"wrote {DOC}")
