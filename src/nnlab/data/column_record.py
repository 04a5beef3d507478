"""What Stage 7 did to each column of the user's table, computed from the table and the fitted preprocessing.

:func:`column_record` returns, per column besides the target, its treatment -- ``"numeric"``
(imputed, standardised: one network input), ``"one-hot"`` (one input per category kept, the rare
ones sharing one) or ``"dropped"`` with the reason :func:`nnlab.data.tabular.prepare_table`
gave -- and how many of its cells were missing and what filled them.  A kept column the network
sees as one value on every row is marked ``constant``: standardised it is 0 everywhere and tells the
model nothing.  For a number column that means one value among its non-blank cells: the imputer fills the
blanks with the mean (or median) of that one value and adds no missing indicator.  A text column's blanks
are a category of their own, so it is constant only when it has one value and no blank, or only blanks.
:func:`record_line` is the one-line summary, :func:`record_csv` the table written next to
``metrics.json`` as ``columns.csv``.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from nnlab.data.preprocess import MISSING_LEVEL, export_state
from nnlab.data.tabular import Table

#: The fields of each column's record, in the order ``columns.csv`` lists them.
FIELDS = ("column", "treatment", "inputs", "categories", "rare_categories_grouped", "missing_cells", "filled_by",
          "filled_with", "constant", "multiplied_by", "reason_dropped")


def column_record(table: Table, prep, X_fit) -> list:
    """``[{field: value}, ...]``, one per column besides the target: kept ones in the file's order, then dropped
    (a list, because ``metrics.json`` sorts the keys of a dict).

    Args:
        table: the prepared table (all its rows: missing cells are counted over them).
        prep: the ``ColumnTransformer`` fitted on ``X_fit`` (its fill values and categories are reported).
        X_fit: the rows ``prep`` was fitted on.
    Numbers are filled with the ``impute`` statistic of ``X_fit`` (in the column's units as read:
    ``fill * 2**k`` when the column was rescaled by ``2**-k``); text with the category ``MISSING_LEVEL``.
    """
    state = export_state(prep, X_fit)
    num = state["numeric"] or {"columns": [], "fill": [], "prescale": []}
    cat = {e["column"]: e for e in (state["categorical"] or {"columns": []})["columns"]}
    fills = dict(zip(num["columns"], num["fill"]))
    strategy = prep.named_transformers_["num"].named_steps["impute"].strategy if fills else None
    record = []
    for name in table.features_used:
        col = table.X[name]
        missing = int(col.isna().sum())
        entry = {"column": name, "missing_cells": missing}
        if name in fills:
            k = int(table.prescale.get(name, 0))
            # the imputer fills blanks with the mean/median of the other cells and adds no missing indicator
            entry.update(treatment="numeric", inputs=1, constant=bool(col.dropna().nunique() == 1),
                         filled_by=f"{strategy} of the fitted rows" if missing else None,
                         filled_with=float(np.ldexp(fills[name], k)) if missing else None,
                         multiplied_by=f"2^{-k}" if k else None)
        else:
            levels, rare = cat[name]["levels"], cat[name]["infrequent"]
            # a blank is the category MISSING_LEVEL: one more value the network can tell apart
            entry.update(treatment="one-hot", inputs=len(levels) + bool(rare),
                         constant=bool(col.fillna(MISSING_LEVEL).nunique() == 1), categories=len(levels) + len(rare),
                         rare_categories_grouped=len(rare), filled_by="a category of its own" if missing else None,
                         filled_with=MISSING_LEVEL if missing else None)
        record.append(entry)
    for name, why in table.columns_dropped.items():
        record.append({"column": name, "treatment": "dropped", "inputs": 0, "reason_dropped": why})
    return record


def constant_columns(record: list) -> list:
    """The kept columns the network sees as one value on every row (a number column's blanks filled with it)."""
    return [e["column"] for e in record if e["treatment"] != "dropped" and e["constant"]]


def constant_filled(record: list) -> list:
    """The constant number columns that had blanks: the imputer filled them with the column's one value."""
    return [e["column"] for e in record if e["treatment"] == "numeric" and e["constant"] and e["missing_cells"]]


def _names(names: list, limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(f"'{n}'" for n in names[:limit]) + more


def record_line(record: list) -> str:
    """One line: how many columns were kept as numbers, one-hot encoded (named, with their inputs) or dropped
    (named), and how many cells of the kept columns were filled in how many columns."""
    by = {t: [e["column"] for e in record if e["treatment"] == t] for t in ("numeric", "one-hot", "dropped")}
    inputs = {e["column"]: e["inputs"] for e in record}
    parts = [f"{len(by['numeric'])} numeric"]
    if by["one-hot"]:
        shown = ", ".join(f"'{n}' -> {inputs[n]}" for n in by["one-hot"][:3])
        more = f" and {len(by['one-hot']) - 3} more" if len(by["one-hot"]) > 3 else ""
        parts.append(f"{len(by['one-hot'])} one-hot ({shown} inputs{more})")
    if by["dropped"]:
        parts.append(f"{len(by['dropped'])} dropped ({_names(by['dropped'])})")
    filled = {e["column"]: e["missing_cells"] for e in record if e.get("missing_cells")}
    gaps = (f"{sum(filled.values())} missing cell(s) filled in {len(filled)} column(s) ({_names(list(filled))})"
            if filled else "no cell of a kept column missing")  # (a dropped column's blanks are not counted)
    return f"{', '.join(parts)}; {gaps}; per column: columns.csv"


def record_csv(record: list) -> str:
    """``record`` as CSV text, one row per column, the fields :data:`FIELDS` (blank where they do not apply)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, FIELDS, lineterminator="\n")
    writer.writeheader()
    for entry in record:
        writer.writerow({k: ("" if entry.get(k) is None else entry.get(k)) for k in FIELDS})
    return buf.getvalue()
