"""Tables for Stage 7: scikit-learn's bundled data sets and the user's own CSV files.

Reading a CSV checks everything a user can get wrong and says so in one sentence
(a :class:`CSVError`, which the command line prints as one line with exit status 2):
a missing file, a missing target column (with the columns there are), text in a
numeric column (with its column and line), missing values (how many and where,
unless ``impute="mean"``), a target with a single class.  Text feature columns
are one-hot encoded when ``categorical="auto"``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnlab.errors import NnlabValueError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
BUNDLED = ("breast_cancer", "wine", "iris", "diabetes")


class CSVError(NnlabValueError):
    """The CSV cannot be used as given; the message says why and where."""


@dataclass
class Table:
    """Features and target, ready for a model.

    Attributes:
        X: (n, d) float64 features; NaN marks a missing value to impute.
        y: (n,) int class indices (classification) or float64 targets (regression).
        feature_names: d column names (one-hot columns are ``name=value``).
        target: target column name.
        task: ``"classification"`` or ``"regression"``.
        classes: class names (classification), index = label.
        source: where the data came from.
        description: one-line description.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    target: str
    task: str
    classes: list = field(default_factory=list)
    source: str = ""
    description: str = ""


def load_bundled(name: str) -> Table:
    """One of scikit-learn's bundled data sets as a :class:`Table` (no download)."""
    from sklearn import datasets

    loaders = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
               "iris": datasets.load_iris, "diabetes": datasets.load_diabetes}
    if name not in loaders:
        raise NnlabValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUNDLED)}")
    d = loaders[name]()
    task = "regression" if name == "diabetes" else "classification"
    classes = [str(c) for c in d.target_names] if task == "classification" else []
    first_line = d.DESCR.strip().splitlines()
    return Table(np.asarray(d.data, dtype=np.float64),
                 d.target.astype(np.int64) if task == "classification" else d.target.astype(np.float64),
                 [str(f) for f in d.feature_names], "target", task, classes, f"sklearn.datasets.load_{name}",
                 first_line[0] if first_line else name)


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _to_float(cell: str):
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def _describe_missing(missing: dict) -> str:
    parts = []
    for col, rows in missing.items():
        shown = ", ".join(str(r) for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
        parts.append(f"'{col}' ({len(rows)}: line {shown})")
    total = sum(len(r) for r in missing.values())
    return f"{total} missing value(s) in column " + "; ".join(parts)


def read_csv_table(path, target, task=None, impute=None, categorical=None, max_classes=20) -> Table:
    """Read a CSV with a header row into a :class:`Table`, validating as it goes.

    Args:
        path: the CSV file.
        target: name of the column to predict.
        task: ``"classification"``, ``"regression"`` or ``None`` (guess: text or at most
            ``max_classes`` distinct integers -> classification).
        impute: ``"mean"`` to leave missing features as NaN for mean imputation
            (with training-row means, later); ``None`` makes them an error.
        categorical: ``"auto"`` to one-hot encode text feature columns; ``None``
            makes text in a feature column an error.
    Raises:
        CSVError: with the reason and location.
    """
    path = Path(path)
    if not path.is_file():
        raise CSVError(f"CSV file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise CSVError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise CSVError(f"{path}: malformed CSV ({exc})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise CSVError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise CSVError(f"{path}: the header must name every column once, got {header}")
    if target not in header:
        raise CSVError(f"target column '{target}' not found; the columns are: {', '.join(header)}")
    body = rows[1:]
    if not body:
        raise CSVError(f"{path}: no data rows after the header")
    for k, r in enumerate(body):
        if len(r) != len(header):
            raise CSVError(f"{path}: line {k + 2} has {len(r)} fields, the header has {len(header)}")
    columns = {name: [r[j].strip() for r in body] for j, name in enumerate(header)}

    target_cells = columns.pop(target)
    missing_target = [k + 2 for k, cell in enumerate(target_cells) if _is_missing(cell)]
    if missing_target:
        raise CSVError(_describe_missing({target: missing_target}) + " (the target cannot be imputed)")

    features, names, missing = [], [], {}
    for name, cells in columns.items():
        gaps = [k + 2 for k, cell in enumerate(cells) if _is_missing(cell)]
        if gaps:
            missing[name] = gaps
        values = [np.nan if _is_missing(cell) else _to_float(cell) for cell in cells]
        bad = [k for k, v in enumerate(values) if v is None]
        if bad:
            if categorical != "auto":
                k = bad[0]
                raise CSVError(f"non-numeric value '{cells[k]}' in column '{name}', line {k + 2} "
                               f"(use --categorical auto to one-hot encode text columns)")
            levels = sorted({cell for cell in cells if not _is_missing(cell)})
            for level in levels:
                features.append([np.nan if _is_missing(c) else float(c == level) for c in cells])
                names.append(f"{name}={level}")
            continue
        if any(not np.isfinite(v) for v in values if v is not None and not np.isnan(v)):
            k = next(i for i, v in enumerate(values) if v is not None and np.isinf(v))
            raise CSVError(f"infinite value in column '{name}', line {k + 2}")
        features.append(values)
        names.append(name)
    if missing and impute != "mean":
        raise CSVError(_describe_missing(missing) + " (use --impute mean to fill them with training means)")
    if not names:
        raise CSVError(f"{path}: no feature columns besides the target '{target}'")
    X = np.array(features, dtype=np.float64).T

    numeric = [_to_float(c) for c in target_cells]
    is_numeric = all(v is not None and np.isfinite(v) for v in numeric)
    if task is None:
        distinct = set(target_cells)
        integral = is_numeric and all(float(v).is_integer() for v in numeric)
        task = "classification" if not is_numeric or (integral and len(distinct) <= max_classes) else "regression"
    if task == "regression":
        if not is_numeric:
            bad = next(k for k, v in enumerate(numeric) if v is None or not np.isfinite(v))
            raise CSVError(f"regression needs a numeric target; '{target}' has '{target_cells[bad]}' on line {bad + 2}")
        y = np.array(numeric, dtype=np.float64)
        if np.ptp(y) == 0:
            raise CSVError(f"target '{target}' is constant ({y[0]:g}); there is nothing to learn")
        classes = []
    elif task == "classification":
        keys = [float(v) for v in numeric] if is_numeric else target_cells
        levels = sorted(set(keys))
        if len(levels) < 2:
            raise CSVError(
                f"target '{target}' has a single class ('{target_cells[0]}'); classification needs two or more"
            )
        index = {lv: i for i, lv in enumerate(levels)}
        y = np.array([index[k] for k in keys], dtype=np.int64)
        classes = [f"{lv:g}" if is_numeric else str(lv) for lv in levels]
    else:
        raise CSVError(f"task must be 'classification' or 'regression', got {task!r}")
    return Table(X, y, names, target, task, classes, str(path), f"{path.name}: {len(y)} rows, {len(names)} features")
