"""Stage 7's preprocessing: a scikit-learn ``ColumnTransformer``, and its fitted state as plain numbers and text.

Training fits :func:`make_preprocessor` (numbers: optional exact power-of-two rescaling,
imputation, standardisation; text: the missing marker, then one-hot encoding with a
cap on categories and unknown values ignored) on training rows only.  A checkpoint
cannot hold the fitted object itself without pickle, and loading a pickle runs
whatever code the file names, so :func:`export_state` writes down the fitted numbers
(JSON-ready) and :func:`apply_state` applies them to new rows with the same floating-
point operations as ``ColumnTransformer.transform`` -- a test holds the two to
bit-identical output.  :func:`apply_state` also reports text values never seen in
training, which the one-hot encoder would silently encode as no category at all, and
:func:`outside_range` finds rows holding numbers far outside the training range recorded with the state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from nnlab.data.tabular import HUGE, CSVError, did_you_mean, number_cells, numeric_tokens

#: The category a missing text cell becomes (so "missing" can carry information).
MISSING_LEVEL = "(missing)"


def rescale(X, exponents):
    """``X * 2**-exponents`` column by column (exact: only the floating-point exponent changes)."""
    return np.ldexp(np.asarray(X, dtype=np.float64), -np.asarray(exponents, dtype=np.int64))


def make_preprocessor(numeric, categorical, prescale=None, impute="mean", max_categories=50) -> ColumnTransformer:
    """The ColumnTransformer for ``numeric`` and ``categorical`` (text) column names.

    Numbers: ``rescale`` by ``prescale[column]`` powers of two (when any), ``SimpleImputer(impute)``,
    ``StandardScaler``.  Text: missing -> ``MISSING_LEVEL``, then ``OneHotEncoder`` keeping the
    ``max_categories - 1`` most frequent values (the rest share one column) and encoding values
    unseen in training as all zeros.
    """
    prescale = prescale or {}
    parts = []
    if numeric:
        steps = []
        if any(prescale.get(c, 0) for c in numeric):
            steps.append(("rescale", FunctionTransformer(rescale, kw_args={"exponents": [prescale.get(c, 0)
                                                                                          for c in numeric]},
                                                         feature_names_out="one-to-one")))
        steps += [("impute", SimpleImputer(strategy=impute)), ("scale", StandardScaler())]
        parts.append(("num", Pipeline(steps), list(numeric)))
    if categorical:
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", max_categories=max_categories, sparse_output=False)),
        ]), list(categorical)))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def export_state(ct: ColumnTransformer, X_fit=None) -> dict:
    """The fitted ``ct``'s numbers as a JSON-ready dict (what :func:`apply_state` needs, nothing else).

    With ``X_fit`` (the DataFrame ``ct`` was fitted on) the numeric part also records each column's
    training ``min`` and ``max`` as read (before any power-of-two rescaling; ``None`` for a column
    with no value), which :func:`outside_range` compares new rows with.
    """
    state = {"numeric": None, "categorical": None}
    fitted = dict(ct.named_transformers_)
    columns = {name: cols for name, _, cols in ct.transformers_}
    if "num" in fitted:
        pipe = fitted["num"]
        cols = list(columns["num"])
        rescaler = pipe.named_steps.get("rescale")
        exponents = rescaler.kw_args["exponents"] if rescaler is not None else [0] * len(cols)
        state["numeric"] = {"columns": cols, "prescale": [int(k) for k in exponents],
                            "fill": pipe.named_steps["impute"].statistics_.astype(float).tolist(),
                            "mean": pipe.named_steps["scale"].mean_.tolist(),
                            "scale": pipe.named_steps["scale"].scale_.tolist()}
        if X_fit is not None:
            state["numeric"].update(training_range(X_fit, cols))
    if "cat" in fitted:
        encoder = fitted["cat"].named_steps["onehot"]
        entries = []
        for i, name in enumerate(columns["cat"]):
            rare = encoder.infrequent_categories_[i]
            rare = [] if rare is None else [str(v) for v in rare]
            entries.append({"column": name, "levels": [str(v) for v in encoder.categories_[i] if str(v) not in rare],
                            "infrequent": rare})
        state["categorical"] = {"fill": MISSING_LEVEL, "columns": entries}
    return state


def training_range(X_fit, columns) -> dict:
    """``{"min": [...], "max": [...]}`` of the numeric ``columns`` of ``X_fit`` (missing cells ignored; ``None``
    for a column without a value)."""
    values = np.asarray(X_fit[list(columns)], dtype=np.float64).reshape(len(X_fit), len(columns))
    present = ~np.isnan(values)
    low = [float(np.min(v[p])) if p.any() else None for v, p in zip(values.T, present.T)]
    high = [float(np.max(v[p])) if p.any() else None for v, p in zip(values.T, present.T)]
    return {"min": low, "max": high}


def input_columns(state: dict) -> list:
    """Every input column the state reads."""
    num = state.get("numeric") or {}
    cat = state.get("categorical") or {}
    return list(num.get("columns", [])) + [e["column"] for e in cat.get("columns", [])]


def _numbers(frame: pd.DataFrame, name: str, where: str, state: dict) -> np.ndarray:
    """A numeric input column as training read it: "$1,200", "12%", a decimal comma, the ``--na-values`` as missing."""
    col = frame[name]
    missing = numeric_tokens(state.get("na_values") or [])
    if col.dtype.kind in "biuf":
        return col.mask(col.isin(missing)).to_numpy(dtype=np.float64)
    cells = col.astype("string").str.strip()
    cells = cells.mask(cells.isin(state.get("na_values") or []) | (cells == ""))
    comma = name in (state.get("decimal_comma") or [])
    values = number_cells(cells, decimal_comma=comma)
    bad = values.isna() & cells.notna()
    if bad.any():
        k = int(bad.to_numpy().argmax())
        how = ""
        if comma:
            said = {"given": "as --decimal comma says", "comma": "as training read it (--decimal comma)"}
            how = (" (read with a decimal comma, dots grouping thousands, "
                   + said.get("given" if state.get("decimal_given") else state.get("decimal"),
                              "as training read it; pass --decimal point if this file writes decimal points") + ")")
        if state.get("decimal") == "point":  # (the option, given to predict or to training, that refused a comma)
            how = " (read with a decimal point, as --decimal point says)"
        raise CSVError(f"{where}: non-numeric value '{cells.iloc[k]}' in column '{name}', line {k + 2}{how}")
    return values.mask(values.isin(missing)).to_numpy(dtype=np.float64)


def _numeric_inputs(state: dict, frame: pd.DataFrame, where: str) -> np.ndarray:
    """(n, numeric columns) float64: the state's numeric columns of ``frame`` as read (NaN where missing).

    Raises:
        CSVError: a cell holds text or infinity.
    """
    num = state["numeric"]
    X = np.column_stack([_numbers(frame, c, where, state) for c in num["columns"]])
    if np.isinf(X).any():
        r, j = np.argwhere(np.isinf(X))[0]
        raise CSVError(f"{where}: infinite value in column '{num['columns'][j]}', line {r + 2}")
    return X


def outside_range(state: dict, frame: pd.DataFrame, where: str = "predict"):
    """Which rows of ``frame`` hold a number far outside the training range: ``(flags (n,) bool, {column: rows})``,
    or ``None`` when the state records no training range (a checkpoint from before it did, or Stage 5's).

    The rule: a value lies far outside when it is beyond the training minimum or maximum by more than the
    training range, i.e. ``x < min - (max - min)`` or ``x > max + (max - min)``; for a column constant in
    training (range 0) that is any other value.  The network has seen nothing there, so its output is an
    extrapolation.  Missing cells are not flagged (they are filled with a training value).
    """
    num = state.get("numeric")
    if not num or "min" not in num:
        return None
    X = _numeric_inputs(state, frame, where)
    low = np.array([np.nan if v is None else v for v in num["min"]], dtype=np.float64)
    high = np.array([np.nan if v is None else v for v in num["max"]], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # (1e308-wide ranges reach inf: nothing lies beyond)
        span = high - low
        below, above = low - span, high + span
        far = np.less(X, below) | np.greater(X, above)  # NaN cells and range-less columns compare False
    counts = {c: int(k) for c, k in zip(num["columns"], far.sum(axis=0)) if k}
    return far.any(axis=1), counts


def describe_outside(counts: dict, rows: int, total: int, flag_column: str) -> str:
    """One line about the rows :func:`outside_range` flagged."""
    shown = ", ".join(f"'{c}' ({k})" for c, k in list(counts.items())[:4]) + (", ..." if len(counts) > 4 else "")
    return (f"{rows} of {total} row(s) hold values far outside the training range (beyond its min or max by more "
            f"than its width) in column(s) {shown}: their predictions extrapolate; see column '{flag_column}'")


def _text(frame: pd.DataFrame, name: str, fill: str, na_values=()) -> np.ndarray:
    cells = frame[name].astype("string").str.strip()
    return cells.mask((cells == "") | cells.isin(list(na_values))).fillna(fill).to_numpy(dtype=object)


def apply_state(state: dict, frame: pd.DataFrame, where: str = "predict"):
    """Transform ``frame`` as the fitted ColumnTransformer whose :func:`export_state` is ``state`` would.

    Returns:
        ``(X, unseen)``: X (n, features) float64; ``unseen`` a list of ``(column, values,
        rows, known values)`` for each text column holding values never seen in training
        (encoded as zeros); :func:`describe_unseen` words one.
    Raises:
        CSVError: a needed column is absent, a numeric column holds text, infinity, a
            missing value the state cannot fill, or a value so far from the training
            values that the network's arithmetic would overflow.
    """
    missing = [c for c in input_columns(state) if c not in frame.columns]
    cased = {c: [f for f in map(str, frame.columns) if f.lower() == c.lower()] for c in missing}
    if missing and all(len(found) == 1 for found in cased.values()):
        shown = ", ".join(f"'{found[0]}' for '{c}'" for c, found in cased.items())
        raise CSVError(f"{where}: the file's headers differ from the model's only in letter case: {shown}; rename "
                       "them as the model has them")
    if missing:
        raise CSVError(f"{where}: the model needs column(s) {', '.join(repr(c) for c in missing)}"
                       f"{did_you_mean(missing[0], frame.columns)}; the columns are: "
                       f"{', '.join(map(str, frame.columns))}")
    blocks, unseen = [], []
    num = state.get("numeric")
    if num:
        X = _numeric_inputs(state, frame, where)
        if any(num["prescale"]):
            X = rescale(X, num["prescale"])
        gaps = np.isnan(X)
        if gaps.any():
            if num.get("fill") is None:
                r, j = np.argwhere(gaps)[0]
                raise CSVError(f"{where}: missing value in column '{num['columns'][j]}', line {r + 2}")
            X = np.where(gaps, np.asarray(num["fill"]), X)
        X -= np.asarray(num["mean"])
        X /= np.asarray(num["scale"])
        far = np.abs(X) > HUGE
        if far.any():
            r, j = np.argwhere(far)[0]
            raise CSVError(f"{where}: column '{num['columns'][j]}', line {r + 2}: the value is more than {HUGE:g} "
                           "standard deviations from the training mean; the network's arithmetic would overflow")
        blocks.append(X)
    cat = state.get("categorical")
    if cat:
        for entry in cat["columns"]:
            cells = _text(frame, entry["column"], cat["fill"], state.get("na_values") or [])
            levels, rare = entry["levels"], set(entry["infrequent"])
            width = len(levels) + (1 if rare else 0)
            block = np.zeros((len(cells), width))
            index = {v: i for i, v in enumerate(levels)}
            new = []
            for r, value in enumerate(cells):
                if value in index:
                    block[r, index[value]] = 1.0
                elif value in rare:
                    block[r, -1] = 1.0
                else:
                    new.append(value)
            if new:
                unseen.append((entry["column"], sorted(set(new)), len(new), levels + sorted(rare)))
            blocks.append(block)
    X = np.hstack(blocks) if blocks else np.zeros((len(frame), 0))
    return X, unseen


def describe_filled(state: dict, frame: pd.DataFrame, where: str = "predict") -> str | None:
    """One line naming the numeric columns of ``frame`` with missing cells that :func:`apply_state` fills with
    the training statistic (as training's imputer did), their counts and the values filled; None when there are
    none.  Columns missing on every row are left out (a line of their own says those tell the model nothing)."""
    num = state.get("numeric")
    if not num or num.get("fill") is None:
        return None
    gaps = np.isnan(_numeric_inputs(state, frame, where))
    counts = gaps.sum(axis=0)
    shown = [f"'{c}' ({int(k)}, with {fill:g})" for c, k, fill in zip(num["columns"], counts, num["fill"])
             if 0 < k < len(frame)]
    if not shown:
        return None
    more = f" and {len(shown) - 5} more column(s)" if len(shown) > 5 else ""
    return (f"{int(sum(k for k in counts if k < len(frame)))} missing number(s) filled with their column's training "
            f"value, as training did: {', '.join(shown[:5])}{more}")


def describe_unseen(column, values, rows, known) -> str:
    """One line about a text column's values never seen in training."""
    shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    lower = {str(k).casefold(): k for k in known}
    hints = [f"{v!r} -> {lower[v.casefold()]!r}?" for v in values if v.casefold() in lower]
    hint = f"; same word in another case: {', '.join(hints[:3])}" if hints else ""
    return (f"column '{column}': {len(values)} value(s) never seen in training ({shown}) in {rows} row(s), "
            f"encoded as no known category{hint}")
