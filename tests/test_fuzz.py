"""Fuzzing every public entry point: each input ends in a correct result or a clear ValueError/TypeError.

Never a raw NumPy error from deep inside, never a hang, never a NaN result handed back as if valid.
Bounded: a few hundred examples per test.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import nnlab
from nnlab.checkpoint import CheckpointError
from nnlab.cli import main
from nnlab.data import read_idx
from nnlab.data.tabular import CSVError, read_csv_table

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])

DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.bool_])


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


def well_behaved(call):
    """Run ``call``: a result must hold only finite numbers; an error must be a clear ValueError/TypeError."""
    try:
        out = call()
    except (ValueError, TypeError) as exc:
        assert str(exc), "an error with no message"
        assert "Traceback" not in str(exc)
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
        well_behaved(lambda f=f: f(x))


@FUZZ
@given(weird_arrays(), weird_arrays())
def test_binary_functions(a, b):
    for f in (nnlab.relu_backward, nnlab.tanh_backward, nnlab.cross_entropy, nnlab.softmax_cross_entropy_backward,
              nnlab.mse, nnlab.MSELoss(), nnlab.SoftmaxCrossEntropyLoss()):
        well_behaved(lambda f=f: f(a, b))


@FUZZ
@given(weird_arrays(), st.one_of(st.integers(-3, 6), st.floats(), st.text(max_size=2)))
def test_one_hot(y, C):
    out = well_behaved(lambda: nnlab.one_hot(y, C))
    if out is not None:
        assert out.sum() == y.size and out.shape == (y.size, C)


@FUZZ
@given(weird_arrays(), weird_arrays(), weird_arrays(), weird_arrays())
def test_standardization_helpers(X, b, mu, sigma):
    well_behaved(lambda: nnlab.standardize_features(X))
    well_behaved(lambda: nnlab.unstandardize_linear_weights(X, b, mu, sigma))


@FUZZ
@given(weird_arrays(), weird_arrays())
def test_layers_and_models(x, dout):
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    mlp = nnlab.MLP(3, 4, 2, nonlin="tanh", rng=np.random.default_rng(0))
    for model in (lin, mlp.net, mlp):
        if well_behaved(lambda m=model: m.forward(x)) is not None:
            well_behaved(lambda m=model: m.backward(dout))


@FUZZ
@given(weird_arrays(max_dims=2), st.one_of(st.floats(), st.integers(-2, 2), st.text(max_size=2)))
def test_optimizers_penalty_and_gradcheck(x, hyper):
    params = nnlab.Linear(3, 2).parameters()
    for make in (lambda: nnlab.SGD(params, lr=hyper), lambda: nnlab.Adam(params, lr=hyper),
                 lambda: nnlab.SGD(params, lr=0.1, momentum=hyper), lambda: nnlab.L2Penalty(hyper)):
        well_behaved(make)
    well_behaved(lambda: nnlab.gradcheck(nnlab.Linear(3, 2, rng=np.random.default_rng(0)), x).passed)


@pytest.mark.filterwarnings("ignore:Glyph")
@FUZZ
@given(xs=weird_arrays(max_dims=2), ys=weird_arrays(max_dims=2), title=st.text(max_size=8))
def test_plot_series_and_assert_close(xs, ys, title, tmp_path_factory):
    path = tmp_path_factory.mktemp("plots") / "p.png"
    well_behaved(lambda: nnlab.plot_series(xs, ys, title=title, path=path))
    well_behaved(lambda: nnlab.assert_close("fuzz", xs, ys))


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
