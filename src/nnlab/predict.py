"""``nnlab predict``: apply a saved model to the rows of a CSV file.

A Stage 7 checkpoint's ``extra`` record holds the input columns, the fitted
preprocessing as plain numbers and text (:func:`nnlab.data.preprocess.export_state`),
the classes or the target's scale; no pickled object is ever loaded.  Columns are
matched by name, so their order in the CSV does not matter and the target column may
be absent.  A text value never seen in training is reported in one warning line per
column (``strict=True`` makes it an error).  A row holding a number far outside the training range
(beyond the training min or max by more than the range, recorded in the checkpoint) is flagged in an
``outside_training_range`` output column and counted in one warning line.  Stage 5 checkpoints (numeric pixels,
``preprocess = {"mean", "std"}``) are read too.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass

import numpy as np

from nnlab.checkpoint import CheckpointError, load_checkpoint
from nnlab.data.preprocess import (
    apply_state,
    describe_filled,
    describe_outside,
    describe_unseen,
    input_columns,
    outside_range,
)
from nnlab.data.tabular import CSVError, checked_decimal, label_text, read_csv, written_convention
from nnlab.errors import NnlabError
from nnlab.functional import softmax
from nnlab.train import predict


def _state(extra: dict, path) -> dict:
    """The preprocessing state of a checkpoint (a Stage 5 record becomes a numeric-only state without imputation)."""
    pre = extra.get("preprocess")
    if isinstance(pre, dict) and ("numeric" in pre or "categorical" in pre):
        return _checked_state(pre, path)
    names = extra.get("feature_names")
    if isinstance(pre, dict) and isinstance(names, list) and names and isinstance(pre.get("mean"), list) \
            and isinstance(pre.get("std"), list) and len(pre["mean"]) == len(names) == len(pre["std"]):
        return _checked_state({"numeric": {"columns": list(names), "prescale": [0] * len(names), "fill": None,
                                           "mean": pre["mean"], "scale": pre["std"]}, "categorical": None}, path)
    raise CheckpointError(f"{path} has no feature record; save it with nnlab run 5|7 --save")


def _is_list(value, item_ok, length=None) -> bool:
    return isinstance(value, list) and (length is None or len(value) == length) and all(map(item_ok, value))


def _is_number(value, nonzero=False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and (value != 0 or not nonzero)
    except OverflowError:  # an integer beyond float range
        return False


def _is_text(value) -> bool:
    return isinstance(value, str)


def _checked_state(state: dict, path) -> dict:
    """``state`` after checking every field :func:`apply_state` reads: a checkpoint's record is untrusted input."""
    def bad(what):
        return CheckpointError(f"{path}: the checkpoint's preprocessing record is invalid ({what})")

    num, cat = state.get("numeric"), state.get("categorical")
    if num is not None:
        if not isinstance(num, dict) or not _is_list(num.get("columns"), _is_text):
            raise bad("numeric columns must be a list of names")
        n = len(num["columns"])
        if not _is_list(num.get("prescale"), lambda k: isinstance(k, int) and not isinstance(k, bool)
                        and abs(k) <= 2000, n):
            raise bad(f"prescale must be {n} whole numbers")
        if num.get("fill") is not None and not _is_list(num["fill"], _is_number, n):
            raise bad(f"fill must be {n} finite numbers")
        if not _is_list(num.get("mean"), _is_number, n) or not _is_list(num.get("scale"), _is_nonzero, n):
            raise bad(f"mean and scale must be {n} finite numbers, the scales nonzero")
        if ("min" in num or "max" in num) and not all(
                _is_list(num.get(k), lambda v: v is None or _is_number(v), n) for k in ("min", "max")):
            raise bad(f"the training range needs min and max, each {n} finite numbers (or null)")
    if cat is not None:
        if not isinstance(cat, dict) or not _is_text(cat.get("fill")) or not isinstance(cat.get("columns"), list):
            raise bad("the categorical part needs a fill text and a list of columns")
        for entry in cat["columns"]:
            if not (isinstance(entry, dict) and _is_text(entry.get("column"))
                    and _is_list(entry.get("levels"), _is_text) and _is_list(entry.get("infrequent"), _is_text)):
                raise bad("each categorical column needs a name, levels and infrequent levels as text")
    for key in ("decimal_comma", "na_values"):
        if key in state and not _is_list(state[key], _is_text):
            raise bad(f"{key} must be a list of texts")
    if state.get("decimal") not in (None, "point", "comma"):
        raise bad(f"decimal must be 'point' or 'comma', got {state['decimal']!r}")
    if num is None and cat is None:
        raise bad("no input columns")
    return state


def _is_nonzero(value) -> bool:
    return _is_number(value, nonzero=True)


def _checked_extra(extra: dict, path) -> dict:
    """The fields of ``extra`` that predictions read, checked (the preprocessing separately, in :func:`_state`)."""
    task = extra.get("task", "classification")
    if task not in ("classification", "regression"):
        raise CheckpointError(f"{path}: task must be 'classification' or 'regression', got {task!r}")
    if "classes" in extra and not _is_list(extra["classes"], lambda c: _is_text(c) or _is_number(c)):
        raise CheckpointError(f"{path}: the checkpoint's classes must be a list of names or numbers")
    if "labels" in extra and not _is_list(extra["labels"], lambda c: _is_text(c) or _is_number(c)):
        raise CheckpointError(f"{path}: the checkpoint's labels must be a list of names or numbers")
    scale = extra.get("target_scale", {"mean": 0.0, "std": 1.0})
    if not (isinstance(scale, dict) and _is_number(scale.get("mean")) and _is_number(scale.get("std"))):
        raise CheckpointError(f"{path}: target_scale must hold a finite mean and std")
    if not _is_number(extra.get("input_scale", 1.0), nonzero=True):
        raise CheckpointError(f"{path}: input_scale must be a finite nonzero number, got {extra['input_scale']!r}")
    for key in ("stage", "dataset"):
        if not isinstance(extra.get(key, ""), str):
            raise CheckpointError(f"{path}: the checkpoint's {key} must be text, got {extra[key]!r}")
    if not _is_list(extra.get("features_used", []), _is_text):
        raise CheckpointError(f"{path}: the checkpoint's features_used must be a list of column names")
    return extra


@dataclass
class SavedModel:
    """A checkpoint's network with the preprocessing it was trained behind.

    Attributes:
        network: the nnlab module.
        extra: the checkpoint's ``extra`` record.
        state: the preprocessing state (see :mod:`nnlab.data.preprocess`).
    """

    network: object
    extra: dict
    state: dict

    @classmethod
    def load(cls, path) -> SavedModel:
        """Read ``path`` (``allow_pickle=False`` throughout)."""
        network, extra = load_checkpoint(path)
        saved = cls(network, _checked_extra(extra, path), _state(extra, path))
        saved._check_widths(path)
        return saved

    def _check_widths(self, path) -> None:
        """The network takes the columns the preprocessing makes and gives one output per class (or one value)."""
        if not self.network.parameters():
            raise CheckpointError(f"{path}: the checkpoint's network has no parameters, so it was never trained")
        width = len((self.state.get("numeric") or {}).get("columns", [])) + sum(
            len(e["levels"]) + bool(e["infrequent"]) for e in (self.state.get("categorical") or {}).get("columns", []))
        try:
            with np.errstate(all="ignore"):
                outputs = predict(self.network, np.zeros((1, width), self.network.parameters()[0].value.dtype))
        except NnlabError as exc:
            raise CheckpointError(f"{path}: the network does not take the {width} inputs its preprocessing record "
                                  f"makes ({exc})") from None
        k = outputs.shape[-1] if outputs.ndim == 2 else 0
        if not self.classifies:
            if k != 1:
                raise CheckpointError(f"{path}: the checkpoint names no classes, so its network should give one "
                                      f"value per row, but it gives {k}")
            return
        for key in ("classes", "labels"):
            if key in self.extra and len(self.extra[key]) != k:
                raise CheckpointError(f"{path}: the checkpoint lists {len(self.extra[key])} {key} but its network "
                                      f"has {k} outputs")

    def reading(self, decimal=None, where="predict") -> SavedModel:
        """This model reading new files' numbers with ``decimal`` (``"point"``/``"comma"``: every numeric column so),
        or, with ``None``, as training read its file (its ``--decimal``, else column by column).  One decision for
        ``nnlab predict`` and ``nnlab run 7 --load`` (``where`` names which in messages).

        Raises:
            CSVError: ``decimal`` differs from the ``--decimal`` training was given.
            NnlabValueError: ``decimal`` is not ``None``, ``"point"`` or ``"comma"``.
        """
        decimal = checked_decimal(decimal, where)
        trained = self.state.get("decimal")
        if decimal is not None and trained is not None and decimal != trained:
            raise CSVError(f"{where}: --decimal {decimal} differs from the model's training, which read its file "
                           f"with --decimal {trained}; give --decimal {trained} or none")
        given, decimal = decimal, decimal or trained
        if decimal is None:
            return self
        numeric = (self.state.get("numeric") or {}).get("columns", [])
        state = {**self.state, "decimal": decimal, "decimal_comma": list(numeric) if decimal == "comma" else [],
                 "decimal_given": given is not None}  # (messages say whether the option or training read so)
        return dataclasses.replace(self, state=state)

    @property
    def classifies(self) -> bool:
        """True for a classifier (class probabilities), False for a regressor (one value per row)."""
        return self.extra.get("task", "classification") == "classification" and bool(self.extra.get("classes"))

    def outputs(self, frame, strict=False, where="predict"):
        """``(network outputs (n, k), warnings)`` for a DataFrame of raw input columns.

        Raises:
            CSVError: on unseen text values when ``strict``, and on unusable cells.
        """
        X, unseen = apply_state(self.state, frame, where)
        notes = [f"column '{c}' is empty on every row: filled with its training value, so it tells the model "
                 "nothing" for c in input_columns(self.state) if c in frame.columns and _blank(frame[c]).all()]
        notes += [describe_unseen(*u) for u in unseen]
        if strict and notes:
            raise CSVError(f"{where} --strict: {notes[0]}")
        # (filled cells are said, not refused by --strict: training filled its own the same way)
        notes += [line for line in (describe_filled(self.state, frame, where),) if line]
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by predict as an error
            return predict(self.network, X.astype(self.network.parameters()[0].value.dtype)), notes

    def predict_proba(self, frame, strict=False):
        """``(class probabilities (n, classes), warnings)``."""
        out, notes = self.outputs(frame, strict)
        return softmax(out), notes

    def predict_values(self, frame, strict=False):
        """``(regression predictions (n,), warnings)`` on the target's own scale."""
        out, notes = self.outputs(frame, strict)
        scale = self.extra.get("target_scale", {"mean": 0.0, "std": 1.0})
        return out.ravel().astype(np.float64) * scale["std"] + scale["mean"], notes


#: The output column that flags a row holding a value far outside the training range (1) or not (0).
OUTSIDE_COLUMN = "outside_training_range"


def refuse_another_convention(state: dict, csv_path, where: str = "predict") -> None:
    """A CSVError when the cells of the file ``csv_path`` decide a convention (:func:`written_convention`) other
    than the one the model's training read one of its numeric columns with, that column here holding a '.' or a
    ',' (so that the two readings may differ): ``'3.504'`` is 3504 in a file that writes ``'307,0'``.  The message
    names the deciding cell, the column and the ``--decimal`` that reads this file as it is written."""
    text = read_csv(csv_path)
    text = read_csv(csv_path, text_columns=list(text.columns))
    convention, evidence = written_convention(text, text.attrs["separator"])
    if convention is None:
        return
    comma = set(state.get("decimal_comma") or [])
    for name in (state.get("numeric") or {}).get("columns", []):
        trained = "decimal comma" if name in comma else "point"
        if trained == convention or name not in text.columns:
            continue
        if not text[name].astype("string").str.contains(r"[.,]", regex=True).fillna(False).any():
            continue
        option, other = ("comma", "point") if convention == "decimal comma" else ("point", "comma")
        convention, trained = f"decimal {option}", f"decimal {other}"
        how = (f"the model's training was given --decimal {other}: re-save this file with a {trained}"
               if state.get("decimal") else f"pass --decimal {option} to read this file as it is written, or "
               f"--decimal {other} to read it as training did")
        raise CSVError(f"{where}: this file's cells decide a {convention} ({evidence}), but the model's training "
                       f"read column '{name}' with a {trained}; {how}")


def predict_csv(model_path, csv_path, strict: bool = False, decimal=None) -> tuple[str, list]:
    """Predictions for every row of ``csv_path``: ``(CSV text, warning lines)``.

    The text's columns: ``row,prediction[,p_<class>...][,outside_training_range]``.  The last, present when the
    checkpoint records its training range, is 1 for a row with a number far outside it
    (:func:`nnlab.data.preprocess.outside_range`: beyond the training min or max by more than the range), and
    one warning line counts those rows and names their columns.  It is a warning even with ``strict``.
    ``decimal``: ``"point"`` or ``"comma"``, how this file writes numbers (:meth:`SavedModel.reading`); ``None``
    reads it as training read its own file.
    """
    saved = SavedModel.load(model_path).reading(decimal)
    if decimal is None:
        refuse_another_convention(saved.state, csv_path)
    # a column read with a decimal comma stays text for pandas ('1.500' is 1500 there, not pandas' 1.5)
    frame = read_csv(csv_path, text_columns=saved.state.get("decimal_comma") or [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    classes = saved.extra.get("classes") or []
    if saved.classifies:
        proba, notes = saved.predict_proba(frame, strict)
        header = ["row", "prediction", *[f"p_{c}" for c in classes]]
        rows = [[label_text(classes[label]), *[f"{v:.6f}" for v in p]] for label, p in zip(proba.argmax(1), proba)]
    else:
        values, notes = saved.predict_values(frame, strict)
        # each value in the shortest text that reads back as the same number of its dtype (6 digits lost 1e15's)
        header, rows = ["row", "prediction"], [[str(v)] for v in values]
    far = outside_range(saved.state, frame)
    if far is None and (saved.extra.get("preprocess") or {}).get("numeric"):  # a Stage 7 record without a range
        notes.append(f"{model_path} records no training range (saved by an older nnlab): values far outside it "
                     "are not flagged; save the model again to have them flagged")
    if far is not None:
        flags, counts = far
        header.append(OUTSIDE_COLUMN)
        rows = [[*r, int(f)] for r, f in zip(rows, flags)]
        if flags.any():
            notes.append(describe_outside(counts, int(flags.sum()), len(flags), OUTSIDE_COLUMN))
    writer.writerow(header)
    for k, r in enumerate(rows):
        writer.writerow([k + 1, *r])
    return buf.getvalue(), notes


def _blank(column) -> np.ndarray:
    """Which cells of a raw input column are missing or only spaces."""
    text = column.astype("string").str.strip()
    return (column.isna() | (text == "")).to_numpy()
