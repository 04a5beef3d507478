"""Fuzzing every public entry point: each input ends in a correct result or one of nnlab's own errors.

"Well behaved" is strict: an error must be an :class:`nnlab.NnlabError` (never NumPy's broadcast
error, a ``KeyError`` or a ``MemoryError`` from deep inside) whose message names the entry point
that was called; a result must hold only finite numbers.  Never a hang, never a NaN handed back
as if valid.  Bounded: a few hundred examples per test; ``NNLAB_FUZZ_SCALE=20`` multiplies the
counts for a deeper local search.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import nnlab
from nnlab.checkpoint import CheckpointError
from nnlab.cli import main
from nnlab.data import read_idx
from nnlab.data.tabular import CSVError, read_csv_table

SCALE = int(os.environ.get("NNLAB_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=200 * SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.bool_])
#: any argument a careless caller might pass where a number, a size or a name belongs
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-3, 6), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                     st.sampled_from([(0.9, 0.999), (1.0,), [0.5, 0.5], (np.nan, 0.1), np.float64, "float32",
                                      np.array([1, 2]), np.int64(3), np.float32(0.5), object()]))
#: a small layer width, or anything else (a huge width is a real request, and NumPy's MemoryError its answer)
SIZE = st.one_of(st.integers(-2, 5), ANYTHING.filter(lambda v: not isinstance(v, (int, np.integer))
                                                     or isinstance(v, bool) or v < 1))


@st.composite
def weird_arrays(draw, min_dims=0, max_dims=3):
    """Arrays of any dtype here, 0-d to 3-d, possibly empty, possibly holding NaN/inf."""
    kind = draw(st.sampled_from(["numeric", "numeric", "numeric", "object", "string", "complex"]))
    shape = draw(array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=4))
    if kind == "object":
        return np.array([object()] * int(np.prod(shape))).reshape(shape) if np.prod(shape) else np.empty(shape, object)
    if kind == "string":
        return np.full(shape, "x")
    if kind == "complex":
        return np.ones(shape, dtype=complex)
    dtype = draw(DTYPES)
    if np.dtype(dtype).kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    elif dtype is np.bool_:
        elements = st.booleans()
    else:
        elements = st.integers(-5, 5)
    return draw(arrays(dtype, shape, elements=elements))


def well_behaved(call, *names):
    """Run ``call``: a result must hold only finite numbers; an error must be an ``NnlabError`` naming one of
    ``names`` (the entry point called)."""
    try:
        out = call()
    except nnlab.NnlabError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        assert any(name in message for name in names), f"the message does not name {names}: {message!r}"
        return None
    for value in out if isinstance(out, tuple) else (out,):
        if isinstance(value, (np.ndarray, float, np.floating)):
            arr = np.asarray(value)
            if arr.dtype.kind == "f":
                assert np.all(np.isfinite(arr)), f"non-finite result {arr}"
    return out


@FUZZ
@given(weird_arrays())
def test_unary_functions(x):
    for f in (nnlab.relu, nnlab.tanh, nnlab.softmax, nnlab.log_softmax):
        well_behaved(lambda f=f: f(x), f.__name__)


@FUZZ
@given(weird_arrays(), weird_arrays())
# found by the fuzzer: a float64 target just beyond float32's range made the float32 gradient -inf
@example(np.zeros((1, 1), np.float32), np.array([[3.40282357e38]]))
def test_binary_functions(a, b):
    for f in (nnlab.relu_backward, nnlab.tanh_backward, nnlab.cross_entropy, nnlab.softmax_cross_entropy_backward,
              nnlab.mse, nnlab.MSELoss(), nnlab.SoftmaxCrossEntropyLoss()):
        well_behaved(lambda f=f: f(a, b), getattr(f, "__name__", type(f).__name__))


@FUZZ
@given(weird_arrays(), st.one_of(st.integers(-3, 6), st.floats(), st.text(max_size=2)))
def test_one_hot(y, C):
    out = well_behaved(lambda: nnlab.one_hot(y, C), "one_hot")
    if out is not None:
        assert out.sum() == y.size and out.shape == (y.size, C)


@FUZZ
@given(weird_arrays(), weird_arrays(), weird_arrays(), weird_arrays())
def test_standardization_helpers(X, b, mu, sigma):
    well_behaved(lambda: nnlab.standardize_features(X), "standardize_features")
    well_behaved(lambda: nnlab.unstandardize_linear_weights(X, b, mu, sigma), "unstandardize_linear_weights")


@FUZZ
@given(weird_arrays(), weird_arrays())
def test_layers_and_models(x, dout):
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    mlp = nnlab.MLP(3, 4, 2, nonlin="tanh", rng=np.random.default_rng(0))
    for model in (lin, mlp.net, mlp):
        if well_behaved(lambda m=model: m.forward(x), "Linear", "Sequential", "MLP", "Tanh") is not None:
            well_behaved(lambda m=model: m.backward(dout), "Linear", "Sequential", "MLP", "Tanh")


@FUZZ
@given(weird_arrays(max_dims=2), st.one_of(st.floats(), st.integers(-2, 2), st.text(max_size=2)))
def test_optimizers_penalty_and_gradcheck(x, hyper):
    params = nnlab.Linear(3, 2).parameters()
    for make, name in ((lambda: nnlab.SGD(params, lr=hyper), "SGD"), (lambda: nnlab.Adam(params, lr=hyper), "Adam"),
                       (lambda: nnlab.SGD(params, lr=0.1, momentum=hyper), "SGD"),
                       (lambda: nnlab.L2Penalty(hyper), "L2Penalty")):
        well_behaved(make, name)
    well_behaved(lambda: nnlab.gradcheck(nnlab.Linear(3, 2, rng=np.random.default_rng(0)), x).passed,
                 "gradcheck", "Linear")


def test_non_numeric_hyper_parameters_are_named():
    """Text, None, a tuple or a bool as a step size or strength: a TypeError naming the class, not float()'s."""
    params = nnlab.Linear(3, 2).parameters()
    for value in ("", "0.1", None, (0.1,), True):
        for make, name in ((lambda v: nnlab.SGD(params, lr=v), "SGD"), (lambda v: nnlab.Adam(params, lr=v), "Adam"),
                           (lambda v: nnlab.L2Penalty(v), "L2Penalty"),
                           (lambda v: nnlab.Adam(params, betas=(0.9, v)), "Adam")):
            with pytest.raises(nnlab.NnlabTypeError, match=f"^{name}: (lr|lam|betas) must be a number"):
                make(value)


#: anything but a large whole number (which, for epochs, is a valid request for a very long run)
NOT_LARGE = ANYTHING.filter(lambda v: isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 6)


@FUZZ
@given(epochs=NOT_LARGE, batch_size=ANYTHING, value=ANYTHING)
def test_fit_arguments(epochs, batch_size, value):
    """``fit`` with a careless value in each argument: trains, or one NnlabError naming ``fit``."""
    def run(**options):
        model = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
        parts = {"model": model, "loss_fn": nnlab.MSELoss(), "optimizer": nnlab.SGD(model.parameters(), lr=0.1)}
        parts.update((key, options.pop(key)) for key in list(options) if key in parts)
        options = {"epochs": 2, **options}
        return nnlab.fit(parts["model"], parts["loss_fn"], parts["optimizer"], np.ones((4, 2)), np.ones((4, 1)),
                         **options).epoch_loss

    well_behaved(lambda: run(epochs=epochs, batch_size=batch_size), "fit")
    for option in ("rng", "penalty", "evaluate", "augment", "progress", "early_stopping", "model", "loss_fn",
                   "optimizer"):
        well_behaved(lambda option=option: run(**{option: value}), "fit")
    names = ("fit", value) if isinstance(value, str) and value else ("fit",)
    well_behaved(lambda: run(name=value), *names)
    for field in ("patience", "monitor", "min_delta", "mode"):
        well_behaved(lambda f=field: run(early_stopping=nnlab.EarlyStopping(**{f: value}),
                                         evaluate=lambda e: {"val_loss": 1.0}), "fit", "EarlyStopping")
    well_behaved(lambda: run(evaluate=lambda e: {"val_loss": value}), "fit")
    well_behaved(lambda: run(augment=lambda Xb, rng: value, batch_size=2), "fit")


@FUZZ
@given(labels=weird_arrays(min_dims=1, max_dims=1), classes=st.integers(1, 4))
def test_labels_for_the_softmax_losses(labels, classes):
    """Any 1-D array as class labels: integers in range are used, anything else is a named error."""
    logits = np.zeros((labels.shape[0], classes))
    for call, name in ((lambda: nnlab.SoftmaxCrossEntropyLoss()(logits, labels), "SoftmaxCrossEntropyLoss"),
                       (lambda: nnlab.cross_entropy(nnlab.softmax(logits), labels), "cross_entropy")):
        if logits.shape[0]:
            well_behaved(call, name)


@pytest.mark.filterwarnings("ignore:Glyph")
@FUZZ
@given(xs=weird_arrays(max_dims=2), ys=weird_arrays(max_dims=2), title=st.text(max_size=8))
def test_plot_series_and_assert_close(xs, ys, title, tmp_path_factory):
    path = tmp_path_factory.mktemp("plots") / "p.png"
    well_behaved(lambda: nnlab.plot_series(xs, ys, title=title, path=path), "plot_series")
    well_behaved(lambda: nnlab.assert_close("fuzz", xs, ys), "assert_close")


@FUZZ
@given(data=st.binary(max_size=64))
def test_random_bytes_as_idx_and_checkpoint(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("bytes") / "blob"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        read_idx(path)
    with pytest.raises(CheckpointError):
        nnlab.load(path)


CELLS = st.sampled_from(["1", "2.5", "-3", "", "NA", "nan", "inf", "abc", "x y", '"q,uoted"', "1e400", "é", "0"])


@st.composite
def csv_texts(draw):
    cols = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["a", "b", "y", "c", ""]), min_size=cols, max_size=cols))
    rows = draw(st.lists(st.lists(CELLS, min_size=max(cols - 1, 1), max_size=cols + 1), max_size=8))
    return "\n".join([",".join(header)] + [",".join(r) for r in rows])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=csv_texts(), keep=st.booleans(), categorical=st.sampled_from(["none", "auto"]))
def test_malformed_csv_reader(text, keep, categorical, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_text(text, encoding="utf-8")
    try:
        table = read_csv_table(path, "y", keep_id_columns=keep, categorical=categorical)
    except CSVError as exc:
        assert str(exc)
        return
    assert table.X.shape[0] == len(table.y) and table.features_used == list(table.X.columns)
    assert set(table.numeric) | set(table.categorical) == set(table.features_used)
    assert not np.isinf(table.X[table.numeric].to_numpy(dtype=float)).any()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=csv_texts())
def test_malformed_csv_at_the_command_line(text, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "f.csv").write_text(text, encoding="utf-8")
    code = main(["run", "7", "--csv", str(folder / "f.csv"), "--target", "y", "--quick", "--folds", "2",
                 "--no-progress", "--out", str(folder / "out")])
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("nnlab: error:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=csv_texts())
def test_malformed_csv_at_predict(text, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("pred")
    model = nnlab.Linear(2, 2, rng=np.random.default_rng(0))
    model.save(folder / "m.npz", extra={"feature_names": ["a", "b"], "classes": ["n", "p"], "task": "classification",
                                        "preprocess": {"mean": [0, 0], "std": [1, 1]}})
    (folder / "f.csv").write_text(text, encoding="utf-8")
    code = main(["predict", "--model", str(folder / "m.npz"), "--csv", str(folder / "f.csv")])
    out, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1
    else:
        assert out.startswith("row,prediction")


TOKENS = st.sampled_from(["run", "predict", "1", "2", "5", "7", "all", "9", "--lr", "--epochs", "--hidden", "--batch",
                          "--nonlin", "--lam", "--dataset", "--seed", "--quick", "--csv", "--target", "--folds",
                          "--save", "--load", "--model", "--threads", "-1", "0", "0.1", "nan", "abc", "relu",
                          "digits", "--bogus", "", "1e9"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(TOKENS, max_size=7))
def test_random_command_lines(argv, monkeypatch, capsys):
    """Random argument strings: parsing and validation answer 0 or a one-line exit 2 (stages are stubbed)."""
    from nnlab import cli

    monkeypatch.setattr(cli, "run_command", lambda args: 0)
    monkeypatch.setattr(cli, "run_predict", lambda args: 0)
    try:
        code = main(argv)
    except SystemExit as exc:  # --help
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("nnlab: error:")
