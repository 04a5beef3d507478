"""One training loop for every stage: epochs, minibatches, history, early stopping, divergence guard.

Each step is the handout's loop, in order: forward, loss (+ L2 penalty), backward,
penalty gradient, optimizer step.  Whatever the model, loss and optimizer, this is
the only place where training happens.

Checked once, then unchecked: :func:`fit` checks its data up front (dtype, shape,
NaN/inf, every target against the model's output) and then runs only the modules'
and the loss's unchecked cores (see :mod:`nnlab.layers`), telling each what it may do
by argument: the first module never writes to the caller's rows, later modules and
the loss may work in place on arrays ``fit`` owns, and nobody computes dLoss/dX.
Nothing is switched on the caller's objects, so a model or loss used inside an
``evaluate`` callback behaves exactly as outside ``fit``.

Modes, the one exception, as in PyTorch: layers that behave differently while training
(``Dropout``, ``BatchNorm1d``) read their module's ``training`` flag.  ``fit`` trains in
training mode and calls ``evaluate`` (and checks early stopping) in evaluation mode;
``predict`` runs in evaluation mode.  Both give every part of the model back the mode
it had when they were called (:func:`nnlab.layers.mode`), so a caller never finds its
model switched.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnlab._checks import NonFiniteError, as_float_array, refuse_masked, require_positive_int, scan_result
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import mode, modules
from nnlab.losses import Loss
from nnlab.optim import clip_grad_norm as clip_gradients

ADVICE = "lower the learning rate, or check the gradients with nnlab.gradcheck"


@dataclass
class History:
    """What a training run recorded.

    Attributes:
        step_loss: loss of every optimisation step (before its update), data + penalty.
        epoch_loss: mean step loss of every epoch.
        metrics: name -> one value per epoch, from the ``evaluate`` callback.
        diverged: True when a non-finite loss or parameter stopped the run.
        message: why it stopped, when it did not finish normally.
        best_epoch: the epoch whose parameters were kept by early stopping (0-based).
        epochs_run: how many epochs ran.
    """

    step_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    message: str = ""
    best_epoch: int | None = None
    epochs_run: int = 0


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` (from ``evaluate``) has not improved for ``patience`` epochs.

    The parameters of the best epoch are restored at the end.
    """

    patience: int = 20
    monitor: str = "val_loss"
    min_delta: float = 0.0
    mode: str = "min"

    def __post_init__(self):
        """Refuse a negative patience, an unknown mode ... when the object is made, not first inside fit."""
        _check_early_stopping_fields(self, "EarlyStopping", "")


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, unit="epoch")


def fit(
    model,
    loss_fn,
    optimizer,
    X,
    Y,
    *,
    epochs: int,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
    penalty=None,
    evaluate: Callable[[int], dict] | None = None,
    early_stopping: EarlyStopping | None = None,
    augment: Callable | None = None,
    scheduler=None,
    clip_grad_norm: float | None = None,
    progress: bool = False,
    name: str = "fit",
) -> History:
    """Train ``model`` on ``(X, Y)``; return a :class:`History`.

    Args:
        model: a module (``Sequential``, ``Linear``, ``MLP`` ...).
        loss_fn: an nnlab loss such as ``MSELoss()`` or ``SoftmaxCrossEntropyLoss()`` (its
            pure core is called; the object is not changed), or any callable
            ``(output, Y) -> (value, dLoss/doutput)``.
        optimizer: e.g. ``SGD(model.parameters(), lr=0.05)``.
        X, Y: training inputs and targets (same number of rows); ``X`` is (rows, features)
            or any (rows, ...) shape the model's first layer takes, e.g. images (rows, C, H, W).
        epochs: passes over the data.
        batch_size: rows per step; ``None`` is full-batch gradient descent.
        rng: generator for the per-epoch shuffle; ``None`` uses ``np.random`` as the
            handout does (``np.random.permutation``).
        penalty: optional ``L2Penalty``; its value is added to the loss and its
            gradient to the weights' gradients.
        evaluate: called after every epoch with the epoch number; returns a dict of
            metrics to record (e.g. ``{"val_loss": ..., "val_acc": ...}``).
        early_stopping: optional :class:`EarlyStopping` on a metric from ``evaluate``.
        augment: optional ``augment(Xb, rng) -> Xb`` applied to every training
            minibatch (e.g. :func:`nnlab.data.augment.random_shift`).
        scheduler: optional learning-rate schedule (:class:`nnlab.StepLR`,
            :class:`nnlab.CosineAnnealingLR`), stepped once after every epoch's last
            optimizer step (before ``evaluate``).
        clip_grad_norm: optional largest joint gradient norm: every step, after backward
            and the L2 penalty's gradient and before the optimizer (whose own
            ``weight_decay`` comes after), the gradients are scaled by
            :func:`nnlab.clip_grad_norm`.
        progress: show a tqdm bar when writing to a terminal.
        name: used in messages (e.g. ``"stage 1"``).

    Raises:
        NnlabTypeError, NnlabValueError: an argument of the wrong kind or value (``epochs=0``,
            ``batch_size=1.5``, labels that are not integers ...), named with its value.

    Modes: training runs in training mode, ``evaluate`` in evaluation mode; afterwards
    every part of ``model`` is back in the mode it had.  Early stopping keeps the best
    epoch's parameters together with its buffers (batch normalisation's running statistics).
    """
    if not isinstance(name, str):
        raise NnlabTypeError(f"fit: name must be a string, got {name!r}")
    epochs = require_positive_int(epochs, "epochs", name)
    if batch_size is not None:
        batch_size = require_positive_int(batch_size, "batch_size", name)
    evaluate, augment = _checked_options(name, model, loss_fn, optimizer, rng, penalty, evaluate, early_stopping,
                                         augment, progress)
    _check_scheduler(name, scheduler, optimizer)
    with mode(model, training=True):
        return _fit(model, loss_fn, optimizer, X, Y, epochs=epochs, batch_size=batch_size, rng=rng, penalty=penalty,
                    evaluate=evaluate, early_stopping=early_stopping, augment=augment, scheduler=scheduler,
                    clip_grad_norm=clip_grad_norm, progress=progress, name=name)


def _fit(model, loss_fn, optimizer, X, Y, *, epochs, batch_size, rng, penalty, evaluate, early_stopping, augment,
         scheduler, clip_grad_norm, progress, name) -> History:
    """:func:`fit`'s body, run with the model in training mode (its arguments already checked)."""
    net = _network(model)
    params = net.parameters()
    dtype = params[0].value.dtype if params else np.dtype(np.float64)
    X = as_float_array(X, "X", name, dtype=dtype, finite=True)
    refuse_masked(Y, "Y", name)  # (labels skip as_float_array, which checks X's mask)
    Y = np.asarray(Y)
    if Y.dtype.kind == "f":
        Y = as_float_array(Y, "Y", name, dtype=dtype, finite=True)
    if X.ndim < 2:  # rows of features (rows, features), or of images (rows, channels, height, width)
        raise NnlabValueError(f"{name}: X must have a row axis and at least one more, got shape {X.shape}")
    n = X.shape[0]
    if Y.ndim == 0 or Y.shape[0] != n:
        raise NnlabValueError(f"{name}: X has {n} rows but Y has shape {Y.shape}")
    if n == 0:
        raise NnlabValueError(f"{name}: no training rows")
    for p in params:  # backward writes into these buffers
        p.ensure_grad_buffer()
    with mode(model, training=False):  # no running-statistics update, no dropout draw, any batch size
        Y, loss_core = _checked_targets(net, loss_fn, X, Y)
    # what early stopping keeps of its best epoch: the parameters and every buffer (running statistics)
    state = [p.value for p in params] + [b for m in modules(model) for b in m.buffers().values()]
    # an nnlab loss hands back a gradient nobody else holds; a loss of the caller's own might keep it
    grad_is_ours = isinstance(loss_fn, Loss)
    # The data are checked: from here on only the unchecked cores run.  A non-finite value
    # appearing later is divergence, which the loss value shows.
    forward, backward = net._forward, net._backward
    # The output is fit's own, so the loss may turn it into the gradient in place -- unless the last
    # module reads that output again in its backward (a Tanh, say).
    loss_inplace = not net.keeps_output
    history = History()
    best = None
    best_score = math.inf
    waited = 0
    shuffle = batch_size is not None and batch_size < n
    batch = n if batch_size is None else batch_size
    batch_buffer = np.empty((batch,) + X.shape[1:], X.dtype) if shuffle else None
    bar = _progress(epochs, name, progress)
    step = 0
    last_finite = None
    cause = ""  # what a module's or loss's own NonFiniteError said, added to the divergence message
    # A diverging run overflows; the guard below reports that in words, so NumPy need not warn as well.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(epochs):
                # rng=None shuffles with the global np.random.permutation, as the handout's loop does
                perm = (np.random if rng is None else rng).permutation(n) if shuffle else None
                total = 0.0
                count = 0
                for start in range(0, n, batch):
                    if perm is None:
                        Xb, Yb = X[start : start + batch], Y[start : start + batch]
                    else:
                        # A gather per batch, into one reused buffer: no 15 MB of fresh pages per epoch as a
                        # whole-epoch shuffle would need, and no fresh batch array per step.  mode="clip" skips
                        # NumPy's bounds-checked copy (a permutation's indices are always in range).
                        idx = perm[start : start + batch]
                        Xb = np.take(X, idx, axis=0, out=batch_buffer[: len(idx)], mode="clip")
                        Yb = Y[idx]
                    if augment is not None:
                        Xb = augment(Xb, rng)
                    try:
                        # Xb may be the caller's own rows: the first module must not write to it
                        value, grad = loss_core(forward(Xb, False), Yb, loss_inplace)
                    except NonFiniteError as error:  # a checked loss of the caller's own saw the output overflow,
                        value, cause = float("nan"), f" ({error})"  # or a BatchNorm1d's batch variance did
                    if penalty is not None:
                        value += penalty(params)
                    if not math.isfinite(value):
                        history.diverged = True
                        history.message = (
                            f"{name}: training diverged at epoch {epoch + 1}, step {step + 1}: the loss became {value}"
                            f" (last finite loss {last_finite:.6g}); {ADVICE}{cause}"
                            if last_finite is not None
                            else f"{name}: the loss is {value} at the first step; {ADVICE}{cause}"
                        )
                        return history
                    last_finite = value
                    history.step_loss.append(value)
                    backward(grad, grad_is_ours, False)  # nobody needs dLoss/dX
                    if penalty is not None:
                        penalty.backward(params)
                    if clip_grad_norm is not None:
                        try:
                            clip_gradients(params, clip_grad_norm)
                        except NonFiniteError as error:  # a NaN/inf gradient from a finite loss
                            history.diverged = True
                            history.message = (f"{name}: training diverged at epoch {epoch + 1}, step {step + 1}: "
                                               f"{error}")
                            return history
                    optimizer.step()
                    total += value
                    count += 1
                    step += 1
                flush_denormals([p.value for p in params] + optimizer.state_arrays())
                if scheduler is not None:
                    scheduler.step()
                history.epoch_loss.append(total / count)
                history.epochs_run = epoch + 1
                with mode(model, training=False):
                    if evaluate is not None:
                        for key, val in evaluate(epoch).items():
                            history.metrics.setdefault(key, []).append(float(val))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{history.epoch_loss[-1]:.4g}")
                    if early_stopping is not None:
                        score = history.metrics[early_stopping.monitor][-1]
                        if early_stopping.mode == "max":
                            score = -score
                        if score < best_score - early_stopping.min_delta:
                            best_score, waited = score, 0
                            history.best_epoch = epoch
                            best = [a.copy() for a in state]
                        else:
                            waited += 1
                            if waited >= early_stopping.patience:
                                best_at = epoch + 1 - waited
                                history.message = f"{name}: early stop after epoch {epoch + 1} (best epoch {best_at})"
                                break
            if not all(np.all(np.isfinite(p.value)) for p in params):
                history.diverged = True
                history.message = f"{name}: parameters became non-finite by epoch {history.epochs_run}; {ADVICE}"
        finally:
            if bar is not None:
                bar.close()
            if best is not None:
                for current, saved in zip(state, best):
                    current[...] = saved
    return history


def _checked_options(name, model, loss_fn, optimizer, rng, penalty, evaluate, early_stopping, augment, progress):
    """Check :func:`fit`'s other arguments (each of the right kind, else named with its value); return
    ``(evaluate, augment)`` wrapped so that what they hand back is checked too."""
    if not callable(getattr(model, "parameters", None)) or not callable(getattr(model, "forward", None)):
        raise NnlabTypeError(f"{name}: model must be an nnlab module (Linear, Sequential, MLP ...), got {model!r}")
    for label, value, example in (("loss_fn", loss_fn, "MSELoss()"), ("optimizer", optimizer, "SGD(params, lr)")):
        if isinstance(value, type):  # fit(model, MSELoss, ...): the class where an instance belongs
            raise NnlabTypeError(f"{name}: {label} must be an instance such as {example}, got the class {value!r}")
    if inspect.isfunction(loss_fn) and (loss_fn.__module__ or "").startswith("nnlab."):
        # fit(model, nnlab.cross_entropy, ...): a loss *value* function, which returns no gradient
        raise NnlabTypeError(f"{name}: loss_fn must be a loss object such as SoftmaxCrossEntropyLoss() or MSELoss(), "
                             f"got the function nnlab.{loss_fn.__name__}")
    if not callable(loss_fn):
        raise NnlabTypeError(f"{name}: loss_fn must be an nnlab loss or a callable (output, Y) -> (value, grad), "
                             f"got {loss_fn!r}")
    if not callable(getattr(optimizer, "step", None)):
        raise NnlabTypeError(f"{name}: optimizer must have a step() method (e.g. nnlab.SGD), got {optimizer!r}")
    own = {(id(p.owner), p.name) for p in model.parameters()}
    foreign = [p for p in getattr(optimizer, "params", []) if (id(p.owner), p.name) not in own]
    if foreign:  # it would step arrays the model never reads: training would silently change nothing
        raise NnlabValueError(f"{name}: the optimizer holds {len(foreign)} parameter(s) that are not the model's "
                              f"(e.g. {foreign[0]!r}); build it from this model: SGD(model.parameters(), lr)")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise NnlabTypeError(f"{name}: rng must be a numpy.random.Generator or None, got {rng!r}")
    if penalty is not None and not (callable(penalty) and callable(getattr(penalty, "backward", None))):
        raise NnlabTypeError(f"{name}: penalty must be an L2Penalty (or None), got {penalty!r}")
    if not isinstance(progress, (bool, np.bool_)):
        raise NnlabTypeError(f"{name}: progress must be True or False, got {progress!r}")
    for label, value in (("evaluate", evaluate), ("augment", augment)):
        if value is not None and (isinstance(value, type) or not callable(value)):
            raise NnlabTypeError(f"{name}: {label} must be a function or None, got {value!r}")
    monitor = None
    if early_stopping is not None:
        _check_early_stopping(name, early_stopping, evaluate)
        monitor = early_stopping.monitor
    return (None if evaluate is None else _checked_evaluate(evaluate, monitor, name),
            None if augment is None else _checked_augment(augment, name))


def _check_scheduler(name, scheduler, optimizer) -> None:
    """A schedule must set the rate of the optimizer that trains: one bound to another would change nothing."""
    if scheduler is None:
        return
    if isinstance(scheduler, type) or not callable(getattr(scheduler, "step", None)):
        raise NnlabTypeError(f"{name}: scheduler must be a schedule such as StepLR(optimizer, step_size=10) "
                             f"(or None), got {scheduler!r}")
    bound = getattr(scheduler, "optimizer", optimizer)
    if bound is not optimizer:
        raise NnlabValueError(f"{name}: the scheduler {type(scheduler).__name__} is bound to another optimizer than "
                              f"the one fit steps, so it would change nothing; build it from fit's optimizer, e.g. "
                              f"StepLR(optimizer, step_size=10) with fit(..., optimizer=optimizer, ...)")


def _check_early_stopping(name, early_stopping, evaluate) -> None:
    if not isinstance(early_stopping, EarlyStopping):
        raise NnlabTypeError(f"{name}: early_stopping must be an EarlyStopping, got {early_stopping!r}")
    _check_early_stopping_fields(early_stopping, name, "early_stopping.")  # again: they may be set after creation
    if evaluate is None:
        raise NnlabValueError(f"{name}: early_stopping needs an evaluate callback that returns "
                              f"{early_stopping.monitor!r}")


def _check_early_stopping_fields(early_stopping, where: str, prefix: str) -> None:
    """``monitor``, ``patience``, ``mode`` and ``min_delta`` of usable kinds and values, else named in the error."""
    if not isinstance(early_stopping.monitor, str):
        raise NnlabTypeError(f"{where}: {prefix}monitor must be a metric name, got {early_stopping.monitor!r}")
    patience, delta = early_stopping.patience, early_stopping.min_delta
    if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
        raise NnlabValueError(f"{where}: {prefix}patience must be a whole number >= 0, got {patience!r}")
    if not isinstance(early_stopping.mode, str) or early_stopping.mode not in ("min", "max"):
        raise NnlabValueError(f"{where}: {prefix}mode must be 'min' or 'max', got {early_stopping.mode!r}")
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < math.inf:
        raise NnlabValueError(f"{where}: {prefix}min_delta must be a finite number >= 0, got {delta!r}")


def _checked_augment(augment, name):
    """``augment`` wrapped: it must return a float array shaped like the batch it was given (the cores trust it)."""
    def checked(Xb, rng):
        out = augment(Xb, rng)
        if not isinstance(out, np.ndarray) or out.shape != Xb.shape or out.dtype != Xb.dtype:
            got = f"shape {out.shape}, dtype {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
            raise NnlabValueError(f"{name}: augment must return an array of the batch's shape {Xb.shape} and dtype "
                                  f"{Xb.dtype}, got {got}")
        return out

    return checked


def _checked_evaluate(evaluate, monitor, name):
    """``evaluate`` wrapped so that a result that is not a dict of numbers, or lacks ``monitor``, is a clear error."""
    def checked(epoch):
        metrics = evaluate(epoch)
        if not isinstance(metrics, dict):
            raise NnlabTypeError(f"{name}: evaluate must return a dict of metrics, got {type(metrics).__name__}")
        if monitor is not None and monitor not in metrics:
            raise NnlabValueError(f"{name}: early stopping monitors {monitor!r}, but evaluate returned only "
                                  f"{sorted(map(str, metrics))}")
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise NnlabTypeError(f"{name}: evaluate's {key!r} must be a number, got {value!r}")
        return metrics

    return checked


def _network(model):
    """The module whose ``forward`` returns the output alone: an ``MLP``'s ``Sequential``, else the model."""
    return getattr(model, "net", model)


def _checked_targets(model, loss_fn, X, Y):
    """Check the targets once against the model's output; return them and the loss core to call per step.

    One checked forward of the first row finds a wrong input width; an nnlab loss then
    checks every target against the output's shape (e.g. every label in ``[0, classes)``).
    The returned core is the loss's pure ``_loss``, or for any other callable ``(output,
    Y) -> (value, grad)`` the callable itself.
    """
    try:
        head = model.forward(X[:1])
    except NnlabValueError as exc:  # the message names the probe row's shape; the caller passed all of X
        raise NnlabValueError(str(exc).replace(f"shape {X[:1].shape}", f"X of shape {X.shape}")) from None
    if isinstance(loss_fn, Loss):
        # the target check reads only the output's shape and dtype: a broadcast view stands in for all n rows
        Y = loss_fn._check_target(Y, np.broadcast_to(head, (X.shape[0],) + head.shape[1:]))
        return Y, loss_fn._loss
    loss_fn(head, Y[:1])
    return Y, lambda output, target, inplace: loss_fn(output, target)


def flush_denormals(arrays) -> None:
    """Set subnormal values (below the dtype's smallest normal number) to exactly 0, in place.

    Why: weights that never receive a data gradient (MNIST's always-blank border
    pixels) decay towards 0 under L2 and Adam and become subnormal floats, and
    the CPU handles those many times more slowly (profiling showed float32 MNIST
    epochs slowing down severalfold once they appeared).  Values this small (< 1.2e-38 in
    float32) carry no information, so zeroing them changes no result.
    """
    for arr in arrays:
        if arr.dtype.kind == "f" and arr.size:
            arr[np.abs(arr) < np.finfo(arr.dtype).tiny] = 0


def accuracy(model, X, y, batch_size: int = 4096) -> float:
    """Fraction of rows whose arg-max output equals the integer label ``y``."""
    return float(np.mean(predict_classes(model, X, batch_size) == y))


def predict(model, X, batch_size: int = 4096) -> np.ndarray:
    """Forward ``X`` through the model in chunks of ``batch_size`` rows (bounded memory); returns the outputs.

    Checked once, like ``fit``: the input's width and dtype in O(1) before any arithmetic,
    then the unchecked cores on every chunk, then one NaN/inf scan of the (smaller) output;
    only if that fails is ``X`` scanned, to say whether it held NaN/inf or the output
    overflowed.  (A NaN in ``X`` always reaches the output.  An infinite input may be
    saturated on the way, e.g. ``relu(-inf) = 0``; the output is then the network's exact
    limit.)

    Runs in evaluation mode (dropout off, batch normalisation on its running statistics);
    every part of the model is then given back the mode it had.

    Shape: (rows, in_dim) -> (rows, out_dim); any (rows, ...) input the first layer takes (images
    (rows, C, H, W) for a ``Conv2d``) works the same way.
    """
    batch_size = require_positive_int(batch_size, "batch_size", "predict")
    with mode(model, training=False):
        return _predict(_network(model), X, batch_size)


def _predict(model, X, batch_size: int) -> np.ndarray:
    """:func:`predict`'s body, run with the model in evaluation mode."""
    X = as_float_array(X, "X", "predict")
    if X.ndim < 2 or X.shape[0] == 0:
        return model.forward(X)  # the checked face says what is wrong with it, or handles the odd shape
    X = model._check_input(X)
    forward = model._forward
    n = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by the scan, not a warning
        if n <= batch_size:
            out = forward(X, False)
        else:
            out = np.concatenate([forward(X[i : i + batch_size], False) for i in range(0, n, batch_size)])
    return scan_result(out, X, "predict", "X", params=model.named_arrays)


def predict_classes(model, X, batch_size: int = 4096) -> np.ndarray:
    """Arg-max class of every row."""
    return predict(model, X, batch_size).argmax(axis=1)
