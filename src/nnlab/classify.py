"""Train and evaluate an MLP classifier from one small config: the recipe Stages 5 and 7 share.

``ClassifierSpec`` names every choice (widths, activation, optimizer, learning rate,
L2, batch size, epochs, augmentation, dtype); :func:`train_classifier` builds the
network with :func:`nnlab.models.make_mlp` and trains it with
:func:`nnlab.train.fit`, recording training loss and validation metrics per epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nnlab.data.augment import Shift
from nnlab.errors import NnlabValueError
from nnlab.losses import L2Penalty, MSELoss, SoftmaxCrossEntropyLoss
from nnlab.models import make_mlp
from nnlab.optim import SGD, Adam, AdamW
from nnlab.schedules import CosineAnnealingLR
from nnlab.train import EarlyStopping, History, fit, predict


@dataclass(frozen=True)
class ClassifierSpec:
    """Every hyper-parameter of an MLP classifier.

    Attributes:
        hidden: widths of the hidden layers, e.g. ``(64,)`` or ``(128, 128)``.
        nonlin: ``"relu"`` or ``"tanh"``.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        lr: learning rate.
        momentum: SGD momentum (0 = the handout's plain SGD).
        l2: the handout's L2 strength ``lam`` (penalty ``lam * sum(W**2)``).
        batch: minibatch size.
        epochs: most epochs to train.
        shift: random-translation augmentation in pixels (0 = off); needs ``side``.
        side: image side length, for ``shift``.
        dtype: ``"float32"`` or ``"float64"``.
        patience: early-stopping patience on validation loss (0 = off).
        init: ``"xavier"`` or ``"he"``; ``None`` picks He for ReLU, Xavier for tanh.
        dropout: dropout probability after every hidden activation (0 = none).
        norm: ``None`` or ``"batch"`` (batch normalisation after every hidden ``Linear``).
        weight_decay: ``"adamw"``'s decoupled decay rate.
        schedule: ``None`` or ``"cosine"`` (cosine annealing of ``lr`` to 0 over ``epochs``).
    """

    hidden: tuple = (64,)
    nonlin: str = "relu"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    l2: float = 0.0
    batch: int = 128
    epochs: int = 100
    shift: int = 0
    side: int = 0
    dtype: str = "float64"
    patience: int = 0
    init: str | None = None
    dropout: float = 0.0
    norm: str | None = None
    weight_decay: float = 0.0
    schedule: str | None = None

    def describe(self) -> str:
        """One line naming the choices, for tables."""
        opt = f"SGD(lr={self.lr:g}" + (f", m={self.momentum:g})" if self.momentum else ")")
        if self.optimizer == "adam":
            opt = f"Adam(lr={self.lr:g})"
        elif self.optimizer == "adamw":
            opt = f"AdamW(lr={self.lr:g}, wd={self.weight_decay:g})"
        parts = [f"{'-'.join(str(h) for h in self.hidden)} {self.nonlin}", opt, f"batch {self.batch}",
                 f"{self.epochs} epochs"]
        if self.l2:
            parts.append(f"L2 {self.l2:g}")
        if self.norm:
            parts.append(f"{self.norm} norm")
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        if self.shift:
            parts.append(f"shift ±{self.shift}px")
        if self.schedule:
            parts.append(f"{self.schedule} schedule")
        if self.patience:
            parts.append(f"early stop ({self.patience})")
        return ", ".join(parts) + f", {self.dtype}"

    def as_dict(self) -> dict:
        """Plain dict (for metrics.json)."""
        return asdict(self)


def build_optimizer(spec: ClassifierSpec, params):
    """The optimizer named by ``spec``."""
    if spec.optimizer == "adam":
        return Adam(params, lr=spec.lr)
    if spec.optimizer == "adamw":
        return AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "sgd":
        return SGD(params, lr=spec.lr, momentum=spec.momentum)
    raise NnlabValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {spec.optimizer!r}")


def build_scheduler(spec: ClassifierSpec, optimizer):
    """The learning-rate schedule named by ``spec`` (``None`` for a constant rate)."""
    if spec.schedule is None:
        return None
    if spec.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=spec.epochs)
    raise NnlabValueError(f"schedule must be None or 'cosine', got {spec.schedule!r}")


def train_classifier(spec: ClassifierSpec, X, y, n_classes, rng, X_val=None, y_val=None, progress=False,
                     name="classifier", task="classification"):
    """Build and train an MLP (a classifier, or a regressor with ``task="regression"``).

    Classification uses softmax cross-entropy on ``n_classes`` logits and integer
    labels ``y``; regression uses MSE on one output (pass ``n_classes=1``).  With
    validation data, ``history.metrics`` gets ``val_loss`` (and ``val_acc`` for
    classification) per epoch, and early stopping (``spec.patience``) restores the
    best epoch's weights.

    Returns:
        ``(model, history)``.
    """
    dtype = np.dtype(spec.dtype)
    X = np.asarray(X, dtype=dtype)
    model = make_mlp([X.shape[1], *spec.hidden, n_classes], nonlin=spec.nonlin, dtype=dtype, init=spec.init, rng=rng,
                     dropout=spec.dropout, norm=spec.norm)
    regression = task == "regression"
    loss = MSELoss() if regression else SoftmaxCrossEntropyLoss()
    if regression:
        y = np.asarray(y, dtype=dtype).reshape(-1, 1)
    evaluate = None
    if X_val is not None:
        X_val = np.asarray(X_val, dtype=dtype)
        if regression:
            y_val = np.asarray(y_val, dtype=dtype).reshape(-1, 1)

        def evaluate(_epoch):
            out = predict(model, X_val)
            val_loss, _ = loss(out, y_val)  # the checked call: it never writes to ``out``
            if regression:
                return {"val_loss": val_loss}
            return {"val_loss": val_loss, "val_acc": float(np.mean(out.argmax(1) == y_val))}

    stopper = EarlyStopping(patience=spec.patience) if spec.patience and X_val is not None else None
    augment = Shift(spec.side, spec.shift) if spec.shift else None
    optimizer = build_optimizer(spec, model.parameters())
    history: History = fit(
        model, loss, optimizer, X, y, epochs=spec.epochs, batch_size=spec.batch,
        rng=rng, penalty=L2Penalty(spec.l2) if spec.l2 else None, evaluate=evaluate, early_stopping=stopper,
        augment=augment, scheduler=build_scheduler(spec, optimizer), progress=progress, name=name,
    )
    return model, history


def predict_proba(model, X, dtype=None) -> np.ndarray:
    """Softmax probabilities of every row."""
    from nnlab.functional import softmax

    X = np.asarray(X, dtype=dtype or model.dtype)
    return softmax(predict(model, X))
