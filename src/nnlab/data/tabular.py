"""Tables for Stage 7: scikit-learn's bundled data sets and the user's own CSV files.

:func:`read_csv` reads a file with pandas after sniffing its separator (``,`` ``;``
tab or ``|``; a UTF-8 byte-order mark, CRLF line ends and quoted fields are fine) and
checks what pandas would let pass silently: a header that names every column once,
and every line holding as many fields as the header.  :func:`prepare_table` then
decides, and says, what to learn from:

* rows whose target is missing are dropped and counted;
* the task is inferred from the target as ``sklearn.utils.multiclass.type_of_target``
  does (text or two values -> classification; non-integer numbers -> regression;
  integers -> classes when each value has on average enough rows, else regression),
  with the reason in words;
* identifier-like feature columns (text with nearly one distinct value per row, more
  distinct values than the category cap, or a column holding each row's position in the
  file counted from 0 or 1) and empty
  columns are dropped, each with its reason, unless ``keep_id_columns``;
* numeric columns whose magnitude would overflow float64 arithmetic (beyond 1e150, or
  below 1e-150) are rescaled by an exact power of two, recorded so that ``nnlab
  predict`` does the same;
* infinite values, and stray text in an otherwise numeric column, are errors naming
  the column and the line.

Every problem is a :class:`CSVError`, which the command line prints as one line
(exit status 2).
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target

from nnlab.errors import NnlabValueError

BUNDLED = ("breast_cancer", "wine", "iris", "diabetes")
#: Cells read as missing, besides pandas' defaults ("", "NA", "N/A", "NaN", "null", "None", ...).
EXTRA_MISSING = ["?", "na", "Na", "none", "NONE", "missing"]
SEPARATORS = (",", ";", "\t", "|")
#: Outside [TINY, HUGE] a column is rescaled by a power of two before standardising (its square over/underflows).
HUGE, TINY = 1e150, 1e-150
#: A text column is identifier-like when its distinct values reach this share of its rows.
ID_SHARE = 0.9
#: Column names that mark an identifier (a sorted integer column named otherwise, such as a year, is a feature).
ID_NAME = re.compile(r"(?i:(.*[\s_.-])?(id|ids|idx|index|key|row|rownum|row_?number|no|nr|#)|unnamed: ?0)|.*[a-z]ID")
#: An integer target is treated as classes when each distinct value has at least this many rows on average.
ROWS_PER_CLASS = 10


class CSVError(NnlabValueError):
    """The CSV cannot be used as given; the message says why and where."""


@dataclass
class Table:
    """Features and target, with every decision made about them recorded.

    Attributes:
        X: the feature columns used, a DataFrame (numbers as float64, text as stripped
            strings; missing values as NaN), values as read.
        y: (n,) target: labels (classification) or float64 values (regression).
        target: target column name.
        task: ``"classification"`` or ``"regression"``.
        task_reason: why that task, in words.
        numeric, categorical: the numeric and the text feature columns.
        columns_dropped: column -> reason it was not used.
        prescale: column -> power of two ``k``: preprocessing multiplies the column by ``2**-k``.
        classes: display names of the classes, in the order of ``np.unique(y)``.
        notes: one-line notes for the user (rows dropped, columns dropped, rescaling).
        rows_dropped: rows dropped because the target was missing.
        source, description: where the data came from, one line about them.
    """

    X: pd.DataFrame
    y: np.ndarray
    target: str
    task: str
    task_reason: str
    numeric: list = field(default_factory=list)
    categorical: list = field(default_factory=list)
    columns_dropped: dict = field(default_factory=dict)
    prescale: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    rows_dropped: int = 0
    source: str = ""
    description: str = ""

    @property
    def features_used(self) -> list:
        """The input columns the model reads, in the file's order."""
        return list(self.X.columns)


# ---- reading -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _any_field_size():
    """Let the ``csv`` module read fields of any length, as pandas does, and restore its limit afterwards.

    Why: ``csv`` refuses a field beyond 128 KiB by default, which a long text cell reaches.
    """
    before = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the C long of some platforms caps it
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _sniff_separator(lines: list[str]) -> str:
    """The separator that splits the first lines into the same number (> 1) of fields, the most fields winning.

    Why not ``csv.Sniffer``: it guesses from character frequencies and picks letters or
    spaces on small numeric files; consistency of the field count is what matters here.
    """
    best, best_width = ",", 1
    for sep in SEPARATORS:
        widths = {len(r) for r in csv.reader(lines, delimiter=sep, skipinitialspace=True) if r}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = sep, width
    if best_width > 1:
        return best
    for sep in SEPARATORS:  # else: some rows omit trailing empty fields; none is wider than the header, most match it
        widths = [len(r) for r in csv.reader(lines, delimiter=sep, skipinitialspace=True) if r]
        if len(widths) >= 5 and widths[0] > best_width and max(widths) == widths[0] \
                and 2 * widths.count(widths[0]) > len(widths):  # (five lines at least: a two-line file tells nothing)
            best, best_width = sep, widths[0]
    return best


def _head_lines(path: Path, limit: int = 20) -> tuple[list[str], int]:
    """The first ``limit`` non-blank lines after any leading ``#`` comment lines, and how many lines those took."""
    lines, skipped = [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for line in fh:
                if not lines and (not line.strip() or line.lstrip().startswith("#")):
                    skipped += 1
                    continue
                if line.strip():
                    lines.append(line)
                if len(lines) >= limit:
                    break
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    return lines, skipped


def _not_utf8(path: Path) -> CSVError:
    """The error for a file that is not UTF-8 text: where the first undecodable byte is, and what to do."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return CSVError(f"{path}: a UTF-16 text file; nnlab reads UTF-8: re-save it as 'CSV UTF-8' (or convert "
                            f"it: iconv -f UTF-16 -t UTF-8)")
        offset = 0
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                what = "a NUL byte (a binary file?)" if b"\x00" in line else f"byte 0x{line[exc.start]:02x}"
                return CSVError(f"{path}: not a UTF-8 text file: {what} at byte offset {offset + exc.start} "
                                f"(line {number}); re-save it as 'CSV UTF-8' (or convert it, e.g. iconv -f latin1 "
                                "-t UTF-8)")
            offset += len(line)
    return CSVError(f"{path}: not a UTF-8 text file; re-save it as 'CSV UTF-8'")


def _check_layout(path: Path, sep: str, skip: int) -> tuple[list[str], list[int], bool]:
    """Stream the file once: a header naming every column once, and no line with more fields than it.

    Returns ``(header, short lines, trailing)``: the lines that omit trailing empty fields (pandas
    pads them with missing values, as spreadsheets write them), and whether the header ends
    in one unnamed column that is empty on every line (a trailing separator), which the
    caller drops.  A line with more fields than the header is an error: pandas would
    quietly use the first column as the index.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for _ in range(skip):
                fh.readline()
            reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)  # as pandas reads it below
            header = next((r for r in reader if r), None)  # (csv yields [] for a blank line, as pandas skips it)
            if header is None:
                raise CSVError(f"{path}: the file is empty")
            header = [h.strip() for h in header]
            trailing = len(header) > 2 and header[-1] == ""  # "a,b,y," : a separator at the end of every line
            named = header[:-1] if trailing else header
            if len(set(named)) != len(named) or not all(named):
                raise CSVError(f"{path}: the header must name every column once, got {header}")
            numeric_header = pd.to_numeric(pd.Series(header), errors="coerce").notna().all()
            rows, short = 0, []
            for r in reader:
                if not r:
                    continue
                line = reader.line_num + skip
                if len(r) != len(header):
                    hint = ""
                    if numeric_header:
                        hint = " (the first line holds only numbers: is the header row missing?)"
                    elif r[0].lstrip().startswith("#"):
                        hint = " (a comment line inside the table: nnlab skips '#' lines only above the header)"
                    if hint or len(r) > len(header):
                        raise CSVError(f"{path}: line {line} has {len(r)} fields, the header has {len(header)}{hint}")
                    short.append(line)
                elif trailing and r[-1].strip():
                    raise CSVError(f"{path}: the last column has no name in the header but line {line} holds "
                                   f"'{_shown(r[-1])}' in it; name it in the header")
                rows += 1
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except csv.Error as exc:
        raise CSVError(f"{path}: malformed CSV ({exc})") from None
    if rows == 0:
        raise CSVError(f"{path}: no data rows after the header")
    return header, short, trailing


def read_csv(path) -> pd.DataFrame:
    """Read a CSV file with a header row into a DataFrame (separator sniffed; missing cells as NaN).

    Raises:
        CSVError: a missing or non-UTF-8 file, an empty file, a header with blank or
            repeated names, or a line whose field count differs from the header's.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise CSVError(f"{path} is {'a folder' if path.is_dir() else 'not a regular file'}, not a CSV file")
        raise CSVError(f"CSV file not found: {path}")
    lines, skip = _head_lines(path)
    if not lines:
        raise CSVError(f"{path}: the file is empty")
    with _any_field_size():
        sep = _sniff_separator(lines)
        header, short, trailing = _check_layout(path, sep, skip)
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True, na_values=EXTRA_MISSING,
                            index_col=False, low_memory=False, skiprows=skip)
    except (pd.errors.ParserError, ValueError) as exc:
        raise CSVError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    if len(frame.columns) != len(header):
        raise CSVError(f"{path}: malformed CSV (the header reads as {len(header)} fields, the table as "
                       f"{len(frame.columns)})")
    frame.columns = header
    notes = []
    if trailing:
        frame = frame.iloc[:, :-1]
        notes.append("dropped the unnamed last column, empty on every line (each line ends with a separator)")
    if short:
        shown = ", ".join(map(str, short[:3])) + (", ..." if len(short) > 3 else "")
        notes.append(f"{len(short)} line(s) have fewer fields than the header (line {shown}); the missing trailing "
                     "fields are read as missing values")
    frame.attrs["separator"] = sep
    frame.attrs["comment_lines"] = skip
    frame.attrs["read_notes"] = notes
    frame.index += skip  # so that index + 2 is the row's line in the file
    return frame


def load_bundled(name: str) -> tuple[pd.DataFrame, list, str]:
    """One of scikit-learn's bundled data sets as ``(frame with a 'target' column, class names, description)``."""
    from sklearn import datasets

    loaders = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
               "iris": datasets.load_iris, "diabetes": datasets.load_diabetes}
    if name not in loaders:
        raise NnlabValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUNDLED)}")
    d = loaders[name](as_frame=True)
    frame = d.frame
    classes = [str(c) for c in d.target_names] if hasattr(d, "target_names") else []
    first_line = d.DESCR.strip().splitlines()
    return frame, classes, first_line[0] if first_line else name


# ---- deciding what to learn from ------------------------------------------------------------------------------------
def _line(index) -> int:
    """File line of a data row (the header is line 1; blank lines are not counted)."""
    return int(index) + 2


def _shown(value, limit: int = 40) -> str:
    """A cell as quoted in a message: at most ``limit`` characters, the length given when cut."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


#: What :func:`strip_number_format` removes: a currency sign after any sign, thousands separators, a trailing %.
_NUMBER_FORMAT = (r"^([+-]?)\s*[$€£¥]\s*", r"(?<=\d),(?=\d{3}(?!\d))", r"\s*%$")


def strip_number_format(cells: pd.Series) -> pd.Series:
    """Text cells with their number formatting removed: ``'$16,368.94'`` -> ``'16368.94'``, ``'-12.5%'`` -> ``'-12.5'``.

    A percentage keeps its number (12.5, not 0.125): standardisation makes the scale irrelevant.
    """
    out = cells.str.replace(_NUMBER_FORMAT[0], r"\1", regex=True)
    out = out.str.replace(_NUMBER_FORMAT[1], "", regex=True)
    return out.str.replace(_NUMBER_FORMAT[2], "", regex=True)


def _formatted_numbers(cells: pd.Series):
    """``cells`` as float64 when every present one is a number once formatted ($, thousands ',', %) and at least
    one needed that; else ``None``."""
    present = cells.dropna()
    if present.empty or pd.to_numeric(present, errors="coerce").notna().all():
        return None
    numbers = pd.to_numeric(strip_number_format(present), errors="coerce")
    if numbers.isna().any():
        return None
    return numbers.astype(np.float64).reindex(cells.index)


def _text(series: pd.Series) -> pd.Series:
    """Text cells stripped of surrounding spaces; empty ones missing."""
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _target(frame: pd.DataFrame, target: str, notes: list, task=None):
    """The target column with its missing rows dropped (and counted).

    A mostly numeric target with a few words in it is an error naming them when ``task`` is
    ``None``; with ``"regression"`` those rows are dropped, with a note naming them; with
    ``"classification"`` every value is a class.
    """
    if target not in frame.columns:
        columns = list(frame.columns)
        hint = ""
        others = [s for s in SEPARATORS if s != frame.attrs.get("separator", ",") and any(s in c for c in columns)]
        if others:
            shown = "tab" if others[0] == "\t" else f"'{others[0]}'"
            hint = f" (the header holds {shown}: is the file {shown}-separated?)"
        raise CSVError(f"target column '{target}' not found; the columns are: {', '.join(map(str, columns))}{hint}")
    y = frame[target]
    if y.dtype.kind not in "biuf":
        y = _text(y)
        numbers = pd.to_numeric(y, errors="coerce")
        if numbers.notna().sum() == y.notna().sum():  # numbers that pandas kept as text: use them as numbers
            y = numbers
        elif task != "classification" and numbers.notna().sum() >= 0.5 * y.notna().sum():
            words = y[numbers.isna() & y.notna()]
            shown = ", ".join(f"'{_shown(v)}' (line {_line(i)})" for i, v in words.iloc[:3].items())
            shown += ", ..." if len(words) > 3 else ""
            if task is None:
                raise CSVError(f"target '{target}' holds numbers but {len(words)} cell(s) are not: {shown}; correct "
                               "or blank them, or pass --task regression to drop those rows")
            notes.append(f"dropped {len(words)} row(s) whose target '{target}' is not a number: {shown}")
            y = numbers
    missing = y.isna().to_numpy()
    if y.dtype.kind == "f" and np.isinf(y.to_numpy()).any():
        k = int(np.isinf(y.to_numpy()).argmax())
        raise CSVError(f"infinite value in target column '{target}', line {_line(y.index[k])}")
    if missing.all():
        raise CSVError(f"target column '{target}' holds no values")
    if missing.any():
        lines = [_line(i) for i in np.flatnonzero(missing)[:3]]
        more = ", ..." if missing.sum() > 3 else ""
        notes.append(f"dropped {int(missing.sum())} row(s) whose target '{target}' is missing "
                     f"(line {', '.join(map(str, lines))}{more})")
    return y[~missing], int(missing.sum())


def infer_task(y: pd.Series, task: str | None) -> tuple[str, str]:
    """``(task, reason)``: the task given, or the one ``type_of_target`` suggests, in words."""
    numeric = y.dtype.kind in "biuf"
    if task is not None:
        if task not in ("classification", "regression"):
            raise CSVError(f"task must be 'classification' or 'regression', got {task!r}")
        if task == "regression" and not numeric:
            k = pd.to_numeric(y, errors="coerce").isna().to_numpy().argmax()
            raise CSVError(f"regression needs a numeric target; '{y.name}' has '{_shown(y.iloc[k])}' "
                           f"on line {_line(y.index[k])}")
        return task, "as asked (--task)"
    values = y.to_numpy() if numeric else y.to_numpy(dtype=object)
    kind = type_of_target(values)
    distinct = int(y.nunique())
    if not numeric:
        return "classification", f"the target holds text ({distinct} distinct labels)"
    if kind == "binary":
        return "classification", "the target holds two distinct values"
    if kind == "continuous":
        return "regression", "the target holds non-integer numbers"
    per_class = len(y) / distinct
    if per_class >= ROWS_PER_CLASS:
        return "classification", (f"the target holds {distinct} distinct integers, {per_class:.0f} rows each on "
                                  f"average (at least {ROWS_PER_CLASS}: classes)")
    return "regression", (f"the target holds {distinct} distinct integers, {per_class:.1f} rows each on average "
                          f"(fewer than {ROWS_PER_CLASS}: a quantity, not classes; --task classification overrides)")


def _power_of_two(values: np.ndarray) -> int:
    """``k`` such that ``values * 2**-k`` has its largest magnitude in [0.5, 1), or 0 when no rescaling is needed."""
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0.0 or TINY <= peak <= HUGE:
        return 0
    return int(np.frexp(peak)[1])


def _numeric_column(name, col: pd.Series, keep_id: bool, first_row: int = 0):
    """``(values, reason to drop or None, power of two)`` of a numeric column.

    Dropped as identifier-like: a column holding every row's own position in the file counted from 0 or from 1
    (``first_row`` is the index of the file's first data row), or integers rising or falling row after row in a
    column named like an identifier (``id``, ``customer_id``, ``index``, ``row``, ``no``, ``#``).  A sorted integer
    feature with another name, such as a year, is kept.
    """
    values = col.to_numpy(dtype=np.float64)
    finite = np.isfinite(values) | np.isnan(values)
    if not finite.all():
        raise CSVError(f"infinite value in column '{name}', line {_line(col.index[np.argmin(finite)])}")
    present = values[~np.isnan(values)]
    n = present.size
    if not keep_id and n >= 20 and n == values.size:
        offset = values - (col.index.to_numpy() - first_row)
        if offset[0] in (0, 1) and np.all(offset == offset[0]):
            return values, (f"identifier-like: it numbers the rows ({values[0]:g}, {values[1]:g}, ..., "
                            f"{values[-1]:g}: a row number)"), 0
    later, earlier = present[1:], present[:-1]  # compared, not subtracted: 1e308 - (-1e308) would overflow
    if not keep_id and n >= 20 and ID_NAME.fullmatch(str(name)) and np.all(present == np.round(present)) \
            and (np.all(later > earlier) or np.all(later < earlier)):
        return values, (f"identifier-like: {n} distinct integers in file order, one per row, in a column named "
                        "like an identifier"), 0
    return values, None, _power_of_two(present)


def _text_column(name, col: pd.Series, keep_id: bool, max_categories: int, categorical: str):
    """``(cells, reason to drop or None)`` of a text column; stray text in a numeric column is an error."""
    cells = _text(col)
    present = cells.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    bad = numbers.isna()
    if bad.any() and (not bad.all() and bad.mean() < 0.1 or categorical == "none"):
        k = bad.to_numpy().argmax()
        why = ("--categorical none makes text an error; without it text columns are one-hot encoded"
               if categorical == "none"
               else "the column's other values are numbers")
        raise CSVError(f"non-numeric value '{_shown(present.iloc[k])}' in column '{name}', "
                       f"line {_line(present.index[k])} ({why})")
    if not bad.any():  # numbers that pandas kept as text (e.g. after a stray space): use them as numbers
        return cells, None
    distinct, n = int(present.nunique()), len(present)
    if keep_id:
        return cells, None
    if n >= 10 and distinct >= ID_SHARE * n:
        return cells, f"identifier-like: {distinct} distinct values in {n} rows"
    if distinct > max_categories:
        return cells, f"{distinct} distinct values, more than the cap of {max_categories} categories"
    return cells, None


def prepare_table(frame: pd.DataFrame, target: str, task=None, keep_id_columns=False, max_categories=50,
                  categorical="auto", source="", description="", class_names=None) -> Table:
    """Decide what to learn from ``frame``: the target, the task, the feature columns; see the module docstring.

    Args:
        frame: the table, one column of which is ``target``.
        target: the column to predict.
        task: ``"classification"``, ``"regression"`` or ``None`` (inferred, with a reason).
        keep_id_columns: keep identifier-like columns (text ones are one-hot encoded,
            their ``max_categories - 1`` most frequent values kept).
        max_categories: a text column with more distinct values is dropped.
        categorical: ``"auto"`` one-hot encodes text columns; ``"none"`` makes text an error.
        class_names: display names of the classes (bundled sets), else the labels themselves.
    Raises:
        CSVError: with the reason and the place.
    """
    notes: list = []
    if frame.attrs.get("comment_lines"):
        notes.append(f"skipped {frame.attrs['comment_lines']} comment line(s) before the header")
    notes += frame.attrs.get("read_notes", [])
    first_row = int(frame.attrs.get("comment_lines", 0))  # read_csv shifts the index by the comment lines
    y, rows_dropped = _target(frame, target, notes, task)
    task, reason = infer_task(y, task)
    kept = frame.loc[y.index]
    columns, dropped, prescale, numeric, texts = {}, {}, {}, [], []
    for name in frame.columns:
        if name == target:
            continue
        col = kept[name]
        if col.isna().all():
            dropped[name] = "no values"
            continue
        if col.dtype.kind in "biuf":
            values, why, k = _numeric_column(name, col, keep_id_columns, first_row)
        elif (formatted := _formatted_numbers(_text(col))) is not None:
            example = _text(col).dropna()[pd.to_numeric(_text(col).dropna(), errors="coerce").isna()].iloc[0]
            notes.append(f"column '{name}' read as numbers: currency signs, thousands separators and '%' removed "
                         f"('{_shown(example)}' -> {formatted[_text(col) == example].iloc[0]:g})")
            values, why, k = _numeric_column(name, formatted, keep_id_columns, first_row)
        else:
            cells, why = _text_column(name, col, keep_id_columns, max_categories, categorical)
            if why is None and pd.to_numeric(cells.dropna(), errors="coerce").notna().all():
                values, why, k = _numeric_column(name, pd.to_numeric(cells), keep_id_columns, first_row)
            else:
                values, k = cells.to_numpy(dtype=object, na_value=np.nan), None
        if why is not None:
            dropped[name] = why
            continue
        if k is None:
            texts.append(name)
            columns[name] = values
        else:
            numeric.append(name)
            columns[name] = values
            if k:
                prescale[name] = k
                notes.append(f"column '{name}' reaches {np.nanmax(np.abs(values)):.3g} in magnitude: divided by 2^{k}"
                             " (exact) before standardising, which leaves the standardised values as they were")
    if dropped:
        identifier = any(r.startswith("identifier-like") for r in dropped.values())
        flag = "; --keep-id-columns keeps identifier-like ones" if identifier and not keep_id_columns else ""
        notes.append("dropped column(s) " + "; ".join(f"'{c}' ({r})" for c, r in dropped.items()) + flag)
    if not columns:
        raise CSVError(f"no usable feature columns besides the target '{target}'"
                       + (f" (dropped: {', '.join(dropped)})" if dropped else ""))
    X = pd.DataFrame(columns, index=y.index)
    if task == "regression":
        values = y.to_numpy(dtype=np.float64)
        if np.ptp(values) == 0:
            raise CSVError(f"target '{target}' is constant ({values[0]:g}); there is nothing to learn")
        if not np.isfinite(values).all():
            raise CSVError(f"target '{target}' holds an infinite value")
        classes = []
    else:
        values = y.to_numpy() if y.dtype.kind in "biuf" else y.to_numpy(dtype=object).astype(str)
        labels = np.unique(values)
        if len(labels) < 2:
            raise CSVError(f"target '{target}' has a single class ('{labels[0]}'); classification needs two or more")
        classes = list(class_names) if class_names else [label_text(v) for v in labels]
    return Table(X.reset_index(drop=True), values, target, task, reason, numeric, texts, dropped, prescale, classes,
                 notes, rows_dropped, source, description)


def label_text(value) -> str:
    """A class label as text: ``3`` for 3 and 3.0, ``2.5``, or the label itself."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def read_csv_table(path, target, task=None, keep_id_columns=False, max_categories=50, categorical="auto") -> Table:
    """:func:`read_csv` then :func:`prepare_table`."""
    frame = read_csv(path)
    path = Path(path)
    table = prepare_table(frame, target, task, keep_id_columns, max_categories, categorical, source=str(path))
    table.description = f"{path.name}: {len(table.y)} rows, {len(table.features_used)} feature columns"
    return table


def bundled_table(name: str) -> Table:
    """A bundled scikit-learn data set through the same :func:`prepare_table` as a CSV."""
    frame, classes, description = load_bundled(name)
    return prepare_table(frame, "target", None, keep_id_columns=True, class_names=classes,
                         source=f"sklearn.datasets.load_{name}", description=description)
