"""``nnlab predict``: apply a saved model to the rows of a CSV file.

A Stage 7 checkpoint's ``extra`` record holds the input columns, the fitted
preprocessing as plain numbers and text (:func:`nnlab.data.preprocess.export_state`),
the classes or the target's scale; no pickled object is ever loaded.  Columns are
matched by name, so their order in the CSV does not matter and the target column may
be absent.  A text value never seen in training is reported in one warning line per
column (``strict=True`` makes it an error).  Stage 5 checkpoints (numeric pixels,
``preprocess = {"mean", "std"}``) are read too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from nnlab.checkpoint import CheckpointError, load_checkpoint
from nnlab.data.preprocess import apply_state, describe_unseen
from nnlab.data.tabular import CSVError, label_text, read_csv
from nnlab.functional import softmax
from nnlab.train import predict


def _state(extra: dict, path) -> dict:
    """The preprocessing state of a checkpoint (a Stage 5 record becomes a numeric-only state without imputation)."""
    pre = extra.get("preprocess")
    if isinstance(pre, dict) and ("numeric" in pre or "categorical" in pre):
        return pre
    names = extra.get("feature_names")
    if isinstance(pre, dict) and names and len(pre.get("mean", [])) == len(names) == len(pre.get("std", [])):
        return {"numeric": {"columns": list(names), "prescale": [0] * len(names), "fill": None,
                            "mean": pre["mean"], "scale": pre["std"]}, "categorical": None}
    raise CheckpointError(f"{path} has no feature record; save it with nnlab run 5|7 --save")


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
        return cls(network, extra, _state(extra, path))

    def outputs(self, frame, strict=False, where="predict"):
        """``(network outputs (n, k), warnings)`` for a DataFrame of raw input columns.

        Raises:
            CSVError: on unseen text values when ``strict``, and on unusable cells.
        """
        X, unseen = apply_state(self.state, frame, where)
        notes = [describe_unseen(*u) for u in unseen]
        if strict and notes:
            raise CSVError(f"{where} --strict: {notes[0]}")
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


def predict_csv(model_path, csv_path, strict: bool = False) -> tuple[str, list]:
    """Predictions for every row of ``csv_path``: ``(CSV text "row,prediction[,p_<class>...]", warning lines)``."""
    saved = SavedModel.load(model_path)
    frame = read_csv(csv_path)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    classes = saved.extra.get("classes") or []
    if saved.extra.get("task", "classification") == "classification" and classes:
        proba, notes = saved.predict_proba(frame, strict)
        writer.writerow(["row", "prediction", *[f"p_{c}" for c in classes]])
        for k, (label, p) in enumerate(zip(proba.argmax(1), proba)):
            writer.writerow([k + 1, label_text(classes[label]), *[f"{v:.6f}" for v in p]])
    else:
        values, notes = saved.predict_values(frame, strict)
        writer.writerow(["row", "prediction"])
        for k, v in enumerate(values):
            writer.writerow([k + 1, f"{v:.6g}"])
    return buf.getvalue(), notes
