"""The training loop: histories, divergence guard, early stopping, denormal flushing."""

import warnings

import numpy as np
import pytest

import nnlab
from nnlab._checks import NonFiniteError
from nnlab.train import EarlyStopping, fit, flush_denormals


def _line_data(rng):
    X = rng.uniform(-2, 2, size=(50, 1))
    return X, 3 * X - 1 + 0.1 * rng.normal(size=X.shape)


def test_full_batch_gd_converges(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1), X, Y, epochs=300)
    assert len(hist.step_loss) == 300 and hist.step_loss[-1] < 0.02 and not hist.diverged


def test_divergence_guard_stops_with_a_clear_message(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=5.0), X, Y, epochs=5000, name="stage 1")
    assert hist.diverged and hist.epochs_run < 5000
    assert "stage 1" in hist.message and "epoch" in hist.message and "lower the learning rate" in hist.message
    # full batch: one step per epoch, so the failing step is the one after the last recorded loss
    failing = len(hist.step_loss) + 1
    assert hist.message.startswith(f"stage 1: training diverged at epoch {failing}, step {failing}: the loss became ")
    assert hist.message.endswith(f" (last finite loss {hist.step_loss[-1]:.6g}); {nnlab.train.ADVICE}")
    assert all(np.isfinite(hist.step_loss))


def test_early_stopping_restores_best_weights(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    vals = iter([5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    snapshots = []

    def evaluate(epoch):
        snapshots.append(lin.W.copy())
        return {"val_loss": next(vals)}

    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.01), X, Y, epochs=7, evaluate=evaluate,
               early_stopping=EarlyStopping(patience=3))
    assert hist.best_epoch == 1 and hist.epochs_run == 5
    assert hist.message == "fit: early stop after epoch 5 (best epoch 2)"
    np.testing.assert_array_equal(lin.W, snapshots[1])


def _stop_on(values, rng, **stopping):
    """Run fit with ``evaluate`` handing back ``values`` one per epoch; returns the history."""
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    feed = iter(values)
    return fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.01), X, Y, epochs=len(values),
               evaluate=lambda epoch: {"score": next(feed)}, early_stopping=EarlyStopping(monitor="score", **stopping))


def test_early_stopping_in_max_mode_keeps_the_highest_score(rng):
    hist = _stop_on([0.1, 0.9, 0.5, 0.4, 0.3, 0.95], rng, patience=3, mode="max")
    assert hist.best_epoch == 1 and hist.epochs_run == 5


def test_early_stopping_counts_only_improvements_larger_than_min_delta(rng):
    hist = _stop_on([5.0, 4.95, 4.92, 4.91, 1.0], rng, patience=3, min_delta=0.1)
    assert hist.best_epoch == 0 and hist.epochs_run == 4
    assert hist.message == "fit: early stop after epoch 4 (best epoch 1)"


def test_an_equal_score_is_no_improvement(rng):
    hist = _stop_on([2.0, 2.0, 2.0, 1.0], rng, patience=2)
    assert hist.best_epoch == 0 and hist.epochs_run == 3


def test_epoch_loss_is_the_mean_of_that_epochs_step_losses(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.01), X, Y, epochs=3, batch_size=10, rng=rng)
    assert len(hist.step_loss) == 15 and hist.epochs_run == 3
    np.testing.assert_allclose(hist.epoch_loss, np.mean(np.reshape(hist.step_loss, (3, 5)), axis=1), rtol=1e-12)


def test_minibatch_divergence_names_the_epoch_and_the_global_step(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=rng)
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=3.0), X, Y, epochs=5000, batch_size=10, rng=rng)
    failing = len(hist.step_loss)  # 0-based index of the step whose loss was not finite
    assert hist.diverged and failing > 5
    assert hist.message.startswith(
        f"fit: training diverged at epoch {failing // 5 + 1}, step {failing + 1}: the loss became ")


@pytest.mark.parametrize(("X", "Y", "message"), [
    (np.ones(4), np.ones((4, 1)), "stage 9: X must have a row axis and at least one more, got shape (4,)"),
    (np.ones((4, 1)), np.ones((3, 1)), "stage 9: X has 4 rows but Y has shape (3, 1)"),
    (np.ones((4, 1)), np.float64(1.0), "stage 9: X has 4 rows but Y has shape ()"),
    (np.ones((0, 1)), np.ones((0, 1)), "stage 9: no training rows"),
    (np.array([[1.0], [np.nan]]), np.ones((2, 1)), "stage 9: X holds 1 non-finite"),
    (np.ones((2, 1)), np.array([[1.0], [np.inf]]), "stage 9: Y holds 1 non-finite"),
])
def test_fit_refuses_bad_data_naming_the_run_and_the_array(X, Y, message):
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.NnlabError) as caught:
        fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1), X, Y, epochs=1, name="stage 9")
    assert str(caught.value).startswith(message)


def test_minibatch_fit_records_metrics(rng):
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)
    net = nnlab.make_mlp([4, 8, 2], rng=rng)
    hist = fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=20,
               batch_size=16, rng=rng, evaluate=lambda e: {"acc": nnlab.train.accuracy(net, X, y)})
    assert len(hist.step_loss) == 20 * 7 and len(hist.metrics["acc"]) == 20
    assert hist.metrics["acc"][-1] > 0.9


def test_fit_sets_no_mode_on_the_callers_objects(rng):
    """No flag flipped from a distance: fit leaves every module's and the loss's settings as it found them."""
    net = nnlab.make_mlp([3, 4, 1], rng=rng)
    loss = nnlab.MSELoss()

    def settings():
        objects = [*net, loss]
        return [{k: v for k, v in vars(o).items() if v is not None and not isinstance(v, np.ndarray)} for o in objects]

    before = settings()
    fit(net, loss, nnlab.SGD(net.parameters(), lr=0.01), rng.normal(size=(5, 3)), rng.normal(size=(5, 1)), epochs=1)
    assert settings() == before
    net.forward(np.ones((2, 3)))
    assert net.backward(np.ones((2, 1))).shape == (2, 3)


def test_flush_denormals():
    a = np.array([1e-40, -1e-42, 1e-30, 0.0, 2.0], dtype=np.float32)
    flush_denormals([a])
    np.testing.assert_array_equal(a, np.array([0, 0, 1e-30, 0, 2], dtype=np.float32))


def test_validation_metrics_equal_a_fresh_evaluation(rng):
    """The per-epoch validation accuracy must be the model's real accuracy (fit's in-place path must not leak)."""
    from nnlab.classify import ClassifierSpec, train_classifier

    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    spec = ClassifierSpec(hidden=(16,), optimizer="adam", lr=0.01, batch=32, epochs=15)
    model, hist = train_classifier(spec, X[:150], y[:150], 2, rng, X[150:], y[150:])
    assert hist.metrics["val_acc"][-1] == nnlab.train.accuracy(model, X[150:], y[150:])
    assert hist.metrics["val_acc"][-1] > 0.8
    value, _ = nnlab.SoftmaxCrossEntropyLoss()(nnlab.train.predict(model, X[150:]), y[150:])
    assert hist.metrics["val_loss"][-1] == value


def test_fit_never_writes_to_the_callers_data(rng):
    X = rng.normal(size=(40, 3))
    X0 = X.copy()
    net = nnlab.Sequential(nnlab.ReLU(), nnlab.Linear(3, 2, rng=rng), nnlab.ReLU(), nnlab.Linear(2, 1, rng=rng))
    fit(net, nnlab.MSELoss(), nnlab.SGD(net.parameters(), lr=0.01), X, rng.normal(size=(40, 1)), epochs=3)
    np.testing.assert_array_equal(X, X0)


def test_predict_in_chunks_equals_one_forward(rng):
    net = nnlab.make_mlp([3, 5, 2], rng=rng)
    X = rng.normal(size=(10, 3))
    whole = net.forward(X)
    for batch_size in (1, 3, 4096):
        np.testing.assert_allclose(nnlab.train.predict(net, X, batch_size), whole, rtol=1e-12)
    np.testing.assert_array_equal(nnlab.train.predict_classes(net, X, 3), whole.argmax(axis=1))
    assert nnlab.train.accuracy(net, X, whole.argmax(axis=1), 3) == 1.0


def test_predict_hands_odd_shapes_to_the_checked_forward(rng):
    net = nnlab.make_mlp([2, 3, 2], rng=rng)
    row = rng.normal(size=2)
    np.testing.assert_array_equal(nnlab.train.predict(net, row), net.forward(row))
    assert nnlab.train.predict(net, np.ones((0, 2))).shape == (0, 2)


@pytest.mark.parametrize(("X", "message"), [
    (np.array([[np.nan, 1.0]]), "predict: X holds 1 non-finite"),
    (np.array([["a", "b"]]), "predict: X must hold real numbers, got dtype <U1"),
])
def test_predict_refusals_name_predict_and_x(X, message, rng):
    with pytest.raises(nnlab.NnlabError) as caught:
        nnlab.train.predict(nnlab.make_mlp([2, 3, 2], rng=rng), X)
    assert str(caught.value).startswith(message)


def test_fit_refuses_an_optimizer_over_another_models_parameters():
    model, other = nnlab.Linear(2, 1, rng=np.random.default_rng(0)), nnlab.Linear(2, 1, rng=np.random.default_rng(1))
    with pytest.raises(nnlab.NnlabValueError, match=r"the optimizer holds 2 parameter\(s\) that are not the model's"):
        nnlab.fit(model, nnlab.MSELoss(), nnlab.SGD(other.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)),
                  epochs=1)


def test_fit_names_the_users_shapes_and_the_reshape_for_a_flat_target():
    model = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.NnlabValueError, match=r"got yhat \(50, 1\) and y \(50,\); pass y.reshape\(-1, 1\)"):
        fit(model, nnlab.MSELoss(), nnlab.SGD(model.parameters(), lr=0.1), np.ones((50, 2)), np.ones(50), epochs=1)
    with pytest.raises(nnlab.NnlabValueError, match=r"expected input of width 2, got X of shape \(50, 3\)"):
        fit(model, nnlab.MSELoss(), nnlab.SGD(model.parameters(), lr=0.1), np.ones((50, 3)), np.ones((50, 1)),
            epochs=1)


def _linear_fit(rng, X, Y, **kwargs):
    lin = nnlab.Linear(X.shape[1], Y.shape[1], rng=np.random.default_rng(7))
    kwargs.setdefault("epochs", 3)
    return lin, fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.05), X, Y, rng=rng, **kwargs)


def test_a_callable_loss_is_tried_on_the_first_row_then_called_with_every_batch(rng):
    X, Y = _line_data(rng)
    calls = []

    def squared_error(output, target):
        calls.append((output.shape, target.shape))
        err = output - target
        return float(np.mean(err * err)), 2 * err / err.size

    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    hist = fit(lin, squared_error, nnlab.SGD(lin.parameters(), lr=0.1), X, Y, epochs=2, batch_size=25,
               rng=np.random.default_rng(0))
    assert calls == [((1, 1), (1, 1))] + [((25, 1), (25, 1))] * 4
    twin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    twin_hist = fit(twin, nnlab.MSELoss(), nnlab.SGD(twin.parameters(), lr=0.1), X, Y, epochs=2, batch_size=25,
                    rng=np.random.default_rng(0))
    assert len(hist.step_loss) == 4 and hist.step_loss[-1] < hist.step_loss[0]
    assert twin_hist.step_loss == pytest.approx(hist.step_loss, rel=1e-12)


def test_fit_computes_in_the_models_dtype_whatever_the_datas(rng):
    """float64 data through a float32 model: cast once up front, so the run is the one on float32 data, bit for bit."""
    X, Y = _line_data(rng)
    results = []
    for X_, Y_ in [(X, Y), (X.astype(np.float32), Y.astype(np.float32))]:
        lin = nnlab.Linear(1, 1, rng=np.random.default_rng(3)).astype(np.float32)
        hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.05), X_, Y_, epochs=3, batch_size=8,
                   rng=np.random.default_rng(4))
        results.append((lin.W.copy(), lin.b.copy(), hist.step_loss))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]
    assert results[0][0].dtype == np.float32


def test_a_batch_as_large_as_the_data_draws_no_permutation(rng):
    X, Y = _line_data(rng)
    used = np.random.default_rng(5)
    _linear_fit(used, X, Y, batch_size=len(X))
    assert used.random() == np.random.default_rng(5).random()


def test_rng_none_shuffles_with_the_global_numpy_generator(rng):
    X, Y = _line_data(rng)
    runs = []
    for _ in range(2):
        np.random.seed(11)
        lin, hist = _linear_fit(None, X, Y, batch_size=10)
        runs.append((hist.step_loss, np.random.random()))
    np.random.seed(11)
    assert runs[0] == runs[1] and runs[0][1] != np.random.random()


def test_augment_gets_each_batch_and_fits_own_generator(rng):
    X, Y = _line_data(rng)
    seen = []

    def record(Xb, generator):
        seen.append((Xb.shape, generator))
        return Xb

    _linear_fit(rng, X, Y, batch_size=20, epochs=1, augment=record)
    assert seen == [((20, 1), rng), ((20, 1), rng), ((10, 1), rng)]


def test_evaluate_gets_every_epoch_number(rng):
    X, Y = _line_data(rng)
    epochs = []
    _linear_fit(rng, X, Y, epochs=3, evaluate=lambda e: epochs.append(e) or {"n": len(epochs)})
    assert epochs == [0, 1, 2]


def test_a_callable_loss_that_refuses_an_overflow_is_reported_as_divergence(rng):
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    mse = nnlab.MSELoss()
    hist = fit(lin, lambda out, y: mse(out, y), nnlab.SGD(lin.parameters(), lr=3.0), X, Y, epochs=5000,
               batch_size=10, rng=rng)
    assert hist.diverged and "the loss became nan (last finite loss" in hist.message


def test_a_loss_already_infinite_at_the_first_step_says_so(rng):
    X = np.full((4, 1), 1e200)
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1), X, np.zeros((4, 1)), epochs=2, name="s1")
    assert hist.diverged
    # the whole message: nothing follows the advice when no module or loss raised a cause of its own
    assert hist.message == f"s1: the loss is inf at the first step; {nnlab.train.ADVICE}"


def test_weights_overflowing_in_the_last_update_are_reported(rng):
    """The loss is computed before each update, so only the final check sees weights that overflowed in the last one."""
    X, Y = np.ones((2, 1)), np.full((2, 1), 10.0)
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=1e308), X, Y, epochs=1, name="s2")
    assert hist.diverged is True
    assert hist.message == f"s2: parameters became non-finite by epoch 1; {nnlab.train.ADVICE}"


def test_flush_denormals_keeps_the_smallest_normal_number():
    tiny = np.finfo(np.float64).tiny
    arr = np.array([tiny, tiny / 2, -tiny / 4, 1.0])
    flush_denormals([arr, np.zeros(0), np.arange(3)])
    np.testing.assert_array_equal(arr, [tiny, 0.0, 0.0, 1.0])


class _FakeBar:
    made = []

    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.postfix, self.closed = kwargs, [], [], False
        _FakeBar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)

    def close(self):
        self.closed = True


class _Terminal:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty

    def write(self, text):
        return len(text)

    def flush(self):
        pass


@pytest.mark.parametrize(("progress", "tty", "bar"), [
    (True, True, True), (True, False, False), (False, True, False), (None, True, False),  # None: not given
])
def test_the_progress_bar_only_on_request_and_only_on_a_terminal(progress, tty, bar, rng, monkeypatch):
    import tqdm.auto
    monkeypatch.setattr(tqdm.auto, "tqdm", _FakeBar)
    monkeypatch.setattr("sys.stderr", _Terminal(tty))
    _FakeBar.made = []
    X, Y = _line_data(rng)
    asked = {} if progress is None else {"progress": progress}
    _, hist = _linear_fit(rng, X, Y, epochs=3, name="stage 2", **asked)
    if not bar:
        assert _FakeBar.made == []
        return
    (made,) = _FakeBar.made
    assert made.kwargs == {"total": 3, "desc": "stage 2", "leave": False, "unit": "epoch"}
    assert made.updates == [1, 1, 1] and made.closed
    assert made.postfix == [{"loss": f"{value:.4g}"} for value in hist.epoch_loss]


def test_predict_never_writes_the_callers_rows(rng):
    net = nnlab.Sequential(nnlab.ReLU(), nnlab.Linear(3, 2, rng=rng))
    X = rng.normal(size=(10, 3))
    before = X.copy()
    for batch_size in (4, 100):
        nnlab.train.predict(net, X, batch_size=batch_size)
        np.testing.assert_array_equal(X, before)


def test_a_diverging_run_reports_in_words_without_a_numpy_warning(rng):
    import warnings
    X, Y = _line_data(rng)
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=3.0), X, Y, epochs=5000, batch_size=10,
                   rng=rng)
    assert hist.diverged and "training diverged" in hist.message


def _fit_with(**options):
    model = options.pop("model", None) or nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    loss = options.pop("loss", nnlab.MSELoss())
    own = getattr(model, "parameters", None)
    params = own() if callable(own) and own() else nnlab.Linear(2, 1).parameters()
    opt = options.pop("opt", None) or nnlab.SGD(params, lr=0.1)
    return fit(model, loss, opt, np.ones((4, 2)), np.ones((4, 1)), **{"epochs": 2, **options})


class _ParametersOnly:
    """Has parameters() but no forward(): not a module."""

    def parameters(self):
        return []


def _changed_stopping(**fields):
    """An EarlyStopping whose fields were set after creation (the constructor refuses bad ones itself),
    so fit's own check of them is what is tested."""
    stopping = EarlyStopping()
    for field, value in fields.items():
        setattr(stopping, field, value)
    return stopping


def _val(epoch):
    return {"val_loss": 1.0}


_AUGMENT = "fit: augment must return an array of the batch's shape (4, 2) and dtype float64,"


@pytest.mark.parametrize(("options", "message"), [
    ({"model": object()}, "fit: model must be an nnlab module (Linear, Sequential, MLP ...), got <object"),
    ({"model": _ParametersOnly()}, "fit: model must be an nnlab module (Linear, Sequential, MLP ...), got <test_train"),
    ({"penalty": lambda params: 0.0}, "fit: penalty must be an L2Penalty (or None), got <function"),
    ({"loss": nnlab.MSELoss}, "fit: loss_fn must be an instance such as MSELoss(), got the class <class"),
    ({"opt": nnlab.SGD}, "fit: optimizer must be an instance such as SGD(params, lr), got the class <class"),
    ({"loss": 3}, "fit: loss_fn must be an nnlab loss or a callable (output, Y) -> (value, grad), got 3"),
    ({"opt": object()}, "fit: optimizer must have a step() method (e.g. nnlab.SGD), got <object"),
    ({"rng": 7, "name": "s3"}, "s3: rng must be a numpy.random.Generator or None, got 7"),
    ({"name": 3}, "fit: name must be a string, got 3"),
    ({"epochs": 0, "name": "s5"}, "s5: epochs must be a positive integer, got 0"),
    ({"batch_size": 0, "name": "s5"}, "s5: batch_size must be a positive integer, got 0"),
    ({"penalty": 0.1}, "fit: penalty must be an L2Penalty (or None), got 0.1"),
    ({"progress": 1}, "fit: progress must be True or False, got 1"),
    ({"evaluate": 3}, "fit: evaluate must be a function or None, got 3"),
    ({"evaluate": dict}, "fit: evaluate must be a function or None, got <class 'dict'>"),
    ({"augment": 3}, "fit: augment must be a function or None, got 3"),
    ({"early_stopping": 3, "evaluate": _val}, "fit: early_stopping must be an EarlyStopping, got 3"),
    ({"early_stopping": _changed_stopping(monitor=3), "evaluate": _val},
     "fit: early_stopping.monitor must be a metric name, got 3"),
    ({"early_stopping": EarlyStopping()}, "fit: early_stopping needs an evaluate callback that returns 'val_loss'"),
    ({"early_stopping": _changed_stopping(patience=-1), "evaluate": _val},
     "fit: early_stopping.patience must be a whole number >= 0, got -1"),
    ({"early_stopping": _changed_stopping(patience=True), "evaluate": _val},
     "fit: early_stopping.patience must be a whole number >= 0, got True"),
    ({"early_stopping": _changed_stopping(patience=1.5), "evaluate": _val},
     "fit: early_stopping.patience must be a whole number >= 0, got 1.5"),
    ({"early_stopping": _changed_stopping(mode="x"), "evaluate": _val},
     "fit: early_stopping.mode must be 'min' or 'max', got 'x'"),
    ({"early_stopping": _changed_stopping(mode=3), "evaluate": _val},
     "fit: early_stopping.mode must be 'min' or 'max', got 3"),
    ({"early_stopping": _changed_stopping(min_delta=-1), "evaluate": _val},
     "fit: early_stopping.min_delta must be a finite number >= 0, got -1"),
    ({"early_stopping": _changed_stopping(min_delta=True), "evaluate": _val},
     "fit: early_stopping.min_delta must be a finite number >= 0, got True"),
    ({"early_stopping": _changed_stopping(min_delta=float("inf")), "evaluate": _val},
     "fit: early_stopping.min_delta must be a finite number >= 0, got inf"),
    ({"early_stopping": _changed_stopping(min_delta="x"), "evaluate": _val},
     "fit: early_stopping.min_delta must be a finite number >= 0, got 'x'"),
    ({"augment": lambda X, r: X[:1]}, f"{_AUGMENT} got shape (1, 2), dtype float64"),
    ({"augment": lambda X, r: X.astype(np.float32)}, f"{_AUGMENT} got shape (4, 2), dtype float32"),
    ({"augment": lambda X, r: [1]}, f"{_AUGMENT} got list"),
    ({"evaluate": lambda e: [1.0]}, "fit: evaluate must return a dict of metrics, got list"),
    ({"early_stopping": EarlyStopping(), "evaluate": lambda e: {"acc": 1.0, 2: 3}},
     "fit: early stopping monitors 'val_loss', but evaluate returned only ['2', 'acc']"),
    ({"evaluate": lambda e: {"a": "x"}}, "fit: evaluate's 'a' must be a number, got 'x'"),
    ({"evaluate": lambda e: {"a": True}}, "fit: evaluate's 'a' must be a number, got True"),
])
def test_fit_refuses_each_bad_argument_word_for_word(options, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        _fit_with(**options)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("options", "metrics"), [
    ({"early_stopping": EarlyStopping(patience=0, min_delta=0), "evaluate": _val}, {"val_loss": [1.0, 1.0]}),
    ({"early_stopping": EarlyStopping(patience=np.int64(2), min_delta=2), "evaluate": _val}, {"val_loss": [1.0, 1.0]}),
    ({"progress": np.bool_(False)}, {}),
    ({"evaluate": lambda e: {"a": np.float32(1), "b": np.int64(2), "c": 3}},
     {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [3.0, 3.0]}),
])
def test_fit_takes_the_edge_values_of_its_arguments(options, metrics):
    assert _fit_with(**options).metrics == metrics


def test_fit_keeps_numpy_quiet_inside_even_where_the_caller_raises_on_overflow():
    """Diverging runs (an overflowing penalty; weights overflowing to inf, then 0 * inf) end in words, not in a
    FloatingPointError, even when the caller has set NumPy to raise."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(50, 1))
    X[::5] = 0.0
    net = nnlab.Sequential(nnlab.Linear(1, 8, rng=np.random.default_rng(1)), nnlab.Tanh(),
                           nnlab.Linear(8, 1, rng=np.random.default_rng(2)))
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    with np.errstate(all="raise"):
        penalised = fit(net, nnlab.MSELoss(), nnlab.SGD(net.parameters(), lr=1e3), X, 3 * X - 1, epochs=200,
                        batch_size=10, rng=rng, penalty=nnlab.L2Penalty(1.0))
        overflowed = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=1e308),
                         np.array([[0.0], [1.0], [2.0], [0.0]]), np.array([[500.0], [100.0], [-300.0], [200.0]]),
                         epochs=3, name="s4")
    assert penalised.diverged and "the loss became inf" in penalised.message
    assert overflowed.diverged
    assert overflowed.message.startswith("s4: training diverged at epoch 2, step 2: the loss became nan")


def test_a_callable_loss_gets_targets_in_the_models_dtype(rng):
    X, Y = _line_data(rng)
    seen = []

    def squared_error(output, target):
        seen.append(target.dtype)
        err = output - target
        return float(np.mean(err * err)), 2 * err / err.size

    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0)).astype(np.float32)
    fit(lin, squared_error, nnlab.SGD(lin.parameters(), lr=0.1), X, Y, epochs=1)
    assert set(seen) == {np.dtype(np.float32)}


class _OneWeight(nnlab.Module):
    """``w * x`` with a single float32 parameter: the model's dtype comes from its first (and only) parameter."""

    def __init__(self):
        self.w, self.dw, self.x = np.ones(1, np.float32), np.zeros(1, np.float32), None

    def parameters(self):
        return [nnlab.layers.Param(self, "w", "dw", decay=True)]

    def _forward(self, x, inplace=False):
        self.x = x
        return x * self.w

    def _backward(self, dout, inplace=False, need_dx=True):
        self.dw[...] = np.sum(dout * self.x)
        return dout * self.w if need_dx else None


class _NoStepOptimizer:
    def step(self):
        pass

    def state_arrays(self):
        return []


def test_fit_trains_a_one_parameter_module_and_runs_a_parameterless_one(rng):
    X, Y = _line_data(rng)
    model = _OneWeight()
    hist = fit(model, nnlab.MSELoss(), nnlab.SGD(model.parameters(), lr=0.05), X, 3 * X, epochs=100)
    assert model.w.dtype == np.float32 and abs(float(model.w[0]) - 3.0) < 1e-3
    assert hist.step_loss[-1] < hist.step_loss[0]
    relu = nnlab.Sequential(nnlab.ReLU())
    still = fit(relu, nnlab.MSELoss(), _NoStepOptimizer(), X, np.maximum(X, 0), epochs=2)
    assert still.step_loss == [0.0, 0.0]


def test_early_stopping_on_a_metric_that_never_improves_stops_after_patience_epochs(rng):
    lin = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    hist = fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)), epochs=5,
               evaluate=lambda e: {"val_loss": float("inf")}, early_stopping=EarlyStopping(patience=2))
    assert hist.epochs_run == 2 and hist.best_epoch is None
    assert hist.message == "fit: early stop after epoch 2 (best epoch 0)"


def test_predict_passes_a_single_row_and_an_empty_batch_to_the_checked_forward():
    lin = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(nnlab.train.predict(lin, np.ones(2)), lin.forward(np.ones(2)))
    assert nnlab.train.predict(lin, np.ones((0, 2))).shape == (0, 1)
    with pytest.raises(nnlab.NnlabValueError) as caught:
        nnlab.train.predict(lin, np.float64(1.0))
    assert str(caught.value) == "Linear(2 -> 1): expected input of width 2, got shape ()"


@pytest.mark.parametrize("call", [
    lambda net, X, y: nnlab.train.predict(net, X, 0),
    lambda net, X, y: nnlab.train.predict_classes(net, X, 0),
    lambda net, X, y: nnlab.train.accuracy(net, X, y, 0),
])
def test_predict_and_its_helpers_pass_batch_size_on_and_refuse_zero(call):
    net = nnlab.Linear(2, 3, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.NnlabValueError) as caught:
        call(net, np.ones((4, 2)), np.zeros(4, dtype=int))
    assert str(caught.value) == "predict: batch_size must be a positive integer, got 0"


def test_fit_names_the_first_foreign_parameter_word_for_word():
    model, other = nnlab.Linear(2, 1, rng=np.random.default_rng(0)), nnlab.Linear(2, 1, rng=np.random.default_rng(1))
    with pytest.raises(nnlab.NnlabValueError) as caught:
        nnlab.fit(model, nnlab.MSELoss(), nnlab.SGD(other.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)),
                  epochs=1)
    assert str(caught.value) == ("fit: the optimizer holds 2 parameter(s) that are not the model's "
                                 "(e.g. Param(Linear.W, shape=(1, 2))); build it from this model: "
                                 "SGD(model.parameters(), lr)")


class _ChunkRecorder(nnlab.Linear):
    """A Linear that records how many rows each call of its core receives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []

    def _forward(self, x, inplace=False):
        self.rows.append(x.shape[0])
        return super()._forward(x, inplace)


@pytest.mark.parametrize("call", [
    lambda net, X: nnlab.train.predict(net, X),
    lambda net, X: nnlab.train.predict_classes(net, X),
    lambda net, X: nnlab.train.accuracy(net, X, np.zeros(len(X), dtype=int)),
])
def test_predict_and_its_helpers_work_in_chunks_of_4096_rows_by_default(call):
    net = _ChunkRecorder(1, 2, rng=np.random.default_rng(0))
    call(net, np.ones((4097, 1)))
    assert net.rows == [4096, 1]


def _overflowing_net():
    """Finite weights whose first layer overflows to +inf and -inf, which the second adds: inf - inf = NaN."""
    first, second = nnlab.Linear(1, 2), nnlab.Linear(2, 1)
    first.W[...], first.b[...] = [[1e308], [-1e308]], 0.0
    second.W[...], second.b[...] = 1.0, 0.0
    return nnlab.Sequential(first, second)


def test_predict_reports_an_overflow_and_an_invalid_operation_as_one_error_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's overflow and invalid-value warnings would surface as errors
        with pytest.raises(NonFiniteError) as caught:
            nnlab.train.predict(_overflowing_net(), np.full((2, 1), 10.0))
    assert str(caught.value) == (
        "predict: the result overflowed to inf/NaN from finite inputs and weights (largest |weight| 1e+308): the "
        "weights diverged (lower the learning rate) or the inputs are too large in magnitude (standardise them)")


def test_predict_names_the_parameter_that_holds_nan():
    lin = nnlab.Linear(1, 1, rng=np.random.default_rng(0))
    lin.W[...] = np.nan
    with pytest.raises(NonFiniteError) as caught:
        nnlab.train.predict(lin, np.ones((2, 1)))
    assert str(caught.value) == ("predict: parameter W holds NaN/inf (training diverged: lower the learning rate; "
                                 "or it was assigned so)")


def test_a_batch_size_beyond_the_rows_is_one_full_batch_and_allocates_nothing_of_its_size():
    """batch_size >= n trains as full-batch GD; no buffer of batch_size rows is made (2**60 rows could not be)."""
    histories = []
    for batch_size in (None, 4, 2**60):
        rng = np.random.default_rng(0)
        X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 1))
        lin = nnlab.Linear(3, 1, rng=np.random.default_rng(1))
        histories.append(fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.1), X, Y, epochs=3,
                             batch_size=batch_size, rng=rng).step_loss)
    assert len(histories[0]) == 3 and histories[0] == histories[1] == histories[2]


@pytest.mark.parametrize("which", ["X", "Y"])
def test_fit_refuses_masked_training_data(which):
    """fit trained on the values under the mask (np.genfromtxt(..., usemask=True) marks missing cells so)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    Y = (X[:, 0] > 0).astype(int)
    data = {"X": X, "Y": Y}
    data[which] = np.ma.masked_greater(data[which], 0.5)
    count = int(np.ma.count_masked(data[which]))
    net = nnlab.make_mlp([3, 2], rng=rng)
    with pytest.raises(nnlab.errors.NnlabValueError, match=rf"^fit: {which} is a masked array with {count} masked"):
        fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), data["X"], data["Y"],
            epochs=1)


def test_early_stopping_refuses_a_negative_patience_when_made():
    """It was accepted and refused only inside fit."""
    with pytest.raises(nnlab.errors.NnlabValueError, match=r"^EarlyStopping: patience must be a whole number >= 0, "
                       r"got -1$"):
        EarlyStopping(patience=-1)
    with pytest.raises(nnlab.errors.NnlabValueError, match=r"^EarlyStopping: mode must be 'min' or 'max', got 'x'$"):
        EarlyStopping(mode="x")


def test_fit_reads_a_loss_functions_module_even_when_it_is_none():
    """A function made at run time may have __module__ None: fit's check must not fail on it with AttributeError."""
    def loss(yhat, y):
        return 0.0, np.zeros_like(yhat)  # (value, gradient), as fit's loss objects give them

    loss.__module__ = None
    net = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    history = fit(net, loss, nnlab.SGD(net.parameters(), lr=0.1), np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1)
    assert history.epoch_loss == [0.0]


@pytest.mark.parametrize("function", [nnlab.cross_entropy, nnlab.mse])
def test_fit_refuses_a_loss_function_where_a_loss_object_belongs(function):
    """fit(net, nnlab.cross_entropy, ...) blamed the probabilities the user never passed to cross_entropy."""
    net = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError, match=r"^fit: loss_fn must be a loss object such as "
                       rf"SoftmaxCrossEntropyLoss\(\) or MSELoss\(\), got the function nnlab\.{function.__name__}$"):
        fit(net, function, nnlab.SGD(net.parameters(), lr=0.1), np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1)
