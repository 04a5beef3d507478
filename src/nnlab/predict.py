"""``nnlab predict``: apply a saved model to the rows of a CSV file.

The checkpoint's ``extra`` record (written by Stages 5 and 7) names the feature
columns, their preprocessing and the classes.  Columns are matched by name, so
their order in the CSV does not matter and the target column may be absent;
one-hot features (``colour=red``) are rebuilt from their text column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from nnlab.checkpoint import CheckpointError, load_checkpoint
from nnlab.data.tabular import CSVError, _is_missing, _to_float
from nnlab.functional import softmax
from nnlab.train import predict


def _column(header, rows, name, path):
    if name in header:
        j = header.index(name)
        return [r[j].strip() for r in rows], None
    base, sep, level = name.partition("=")
    if sep and base in header:
        j = header.index(base)
        return [r[j].strip() for r in rows], level
    raise CSVError(f"{path}: the model needs column '{name}'; the columns are: {', '.join(header)}")


def features_from_csv(path, feature_names, allow_missing: bool):
    """Read the model's feature columns from a CSV into an (n, d) array (NaN for allowed gaps)."""
    path = Path(path)
    if not path.is_file():
        raise CSVError(f"CSV file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CSVError(f"{path}: unreadable CSV ({exc})") from None
    if len(rows) < 2:
        raise CSVError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for k, r in enumerate(body):
        if len(r) != len(header):
            raise CSVError(f"{path}: line {k + 2} has {len(r)} fields, the header has {len(header)}")
    X = np.empty((len(body), len(feature_names)))
    for j, name in enumerate(feature_names):
        cells, level = _column(header, body, name, path)
        for k, cell in enumerate(cells):
            if _is_missing(cell):
                if not allow_missing:
                    raise CSVError(f"{path}: missing value in column '{name}', line {k + 2}")
                X[k, j] = np.nan
            elif level is not None:
                X[k, j] = float(cell == level)
            else:
                value = _to_float(cell)
                if value is None or not np.isfinite(value):
                    raise CSVError(f"{path}: non-numeric value '{cell}' in column '{name}', line {k + 2}")
                X[k, j] = value
    return X


def predict_csv(model_path, csv_path) -> str:
    """Predictions for every row of ``csv_path`` as CSV text: ``row,prediction[,p_<class>...]``."""
    model, extra = load_checkpoint(model_path)
    names = extra.get("feature_names")
    pre = extra.get("preprocess")
    if not names or not pre:
        raise CheckpointError(f"{model_path} has no feature record; save it with nnlab run 5|7 --save")
    X = features_from_csv(csv_path, names, allow_missing=extra.get("impute") == "mean")
    mean, std = np.asarray(pre["mean"]), np.asarray(pre["std"])
    X = (np.where(np.isnan(X), mean, X) - mean) / std
    out = predict(model, X.astype(model.dtype))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    classes = extra.get("classes") or []
    if extra.get("task", "classification") == "classification" and classes:
        proba = softmax(out)
        writer.writerow(["row", "prediction", *[f"p_{c}" for c in classes]])
        for k, (label, p) in enumerate(zip(proba.argmax(1), proba)):
            writer.writerow([k + 1, classes[label], *[f"{v:.6f}" for v in p]])
    else:
        scale = extra.get("target_scale", {"mean": 0.0, "std": 1.0})
        for_rows = out.ravel() * scale["std"] + scale["mean"]
        writer.writerow(["row", "prediction"])
        for k, v in enumerate(for_rows):
            writer.writerow([k + 1, f"{v:.6g}"])
    return buf.getvalue()
