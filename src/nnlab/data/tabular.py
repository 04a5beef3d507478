"""Tables for Stage 7: scikit-learn's bundled data sets and the user's own CSV files.

:func:`read_csv` reads a file with pandas after sniffing its separator (``,`` ``;``
tab or ``|``; a UTF-8 byte-order mark, CRLF line ends, quoted fields and gzip-compressed
files named ``.gz`` are fine) and
checks what pandas would let pass silently: a header that names every column once,
and every line holding as many fields as the header (an unnamed first column holding
a saved pandas index is dropped).  :func:`prepare_table` then decides, and says, what
to learn from:

* spaces around text cells are removed; cells named by ``na_values`` become missing;
* number cells formatted as people write them are read as numbers, feature or target:
  ``$1,200``, ``12%``, ``(7)``, and decimal commas (``14,23``, ``1.001,50``) in a file
  not separated by commas; a comma that could group thousands or mark decimals, with
  no cell of the file deciding, is an error (``decimal="point"`` or ``"comma"``, the
  ``--decimal`` option, decides it), as is a column mixing the two; in a decimal-comma
  file, a column pandas parsed as floats is read again from its text (which :func:`read_csv_table`
  keeps) with dots grouping thousands (``1.500`` is 1500; ``1.5`` is an error);
* a column most of whose cells are numbers but some words is an error naming the
  words and their counts (``na_values`` makes them missing);
* target labels that differ only in case are an error (feature values get a note);
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
* infinite values are errors naming the column and the line.

Every problem is a :class:`CSVError`, which the command line prints as one line
(exit status 2).
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import gzip
import re
import sys
import zlib
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
#: ``decimal=`` of the reader -> the number convention it names (``None``: decided from the file's cells).
DECIMAL = {"point": "point", "comma": "decimal comma"}
#: The first bytes of compressed files, to name them; only gzip is read (from a ``.gz`` name, as pandas infers it).
COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}
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
        decimal_comma: the columns read with a decimal comma: in a decimal-comma file every numeric one, whole-number
            ones included (``nnlab predict`` reads them so too: a new file's ``'1.000'`` is 1000 there).
        na_values: the extra cell texts read as missing (``--na-values``).
        decimal: the number convention asked for (``"point"``, ``"comma"``; ``None``: decided from the cells).
        duplicate_rows: rows that repeat an earlier row of the file in every column, the target too.
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
    decimal_comma: list = field(default_factory=list)
    na_values: list = field(default_factory=list)
    decimal: str | None = None
    duplicate_rows: int = 0

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


def _compression(path: Path) -> str | None:
    """``"gzip"`` for a gzip-compressed file named ``.gz``, ``None`` for a plain file; else an error naming what it is.

    Why refuse gzip bytes under another name: pandas infers compression from the name, and a
    ``.csv`` that is not text is more likely a mistake than a convention worth guessing.
    """
    with open(path, "rb") as fh:
        head = fh.read(6)
    kind = next((k for magic, k in COMPRESSED.items() if head.startswith(magic)), None)
    named_gz = path.suffix.lower() == ".gz"
    if kind == "gzip" and named_gz:
        return "gzip"
    if kind == "gzip":
        raise CSVError(f"{path}: the file is gzip-compressed; name it with a .gz ending (nnlab reads those) or "
                       "decompress it (gunzip)")
    if kind is not None:
        raise CSVError(f"{path}: the file is {kind}-compressed; decompress it first (nnlab reads plain CSV files "
                       "and gzip-compressed ones named .gz)")
    if named_gz:
        raise CSVError(f"{path}: the name ends in .gz but the file is not gzip-compressed; rename it")
    return None


def _open(path: Path, compression: str | None, mode: str = "r"):
    """``path`` opened as UTF-8 text (``mode="r"``) or bytes (``"rb"``), decompressed when ``compression`` is gzip."""
    opener = gzip.open if compression == "gzip" else open
    if mode == "rb":
        return opener(path, "rb")
    return opener(path, "rt", newline="", encoding="utf-8-sig")


def _damaged(path: Path, exc: Exception) -> CSVError:
    """The error for a compressed file that cannot be decompressed (truncated or corrupt)."""
    return CSVError(f"{path}: a damaged gzip file ({exc or type(exc).__name__}); compress it again or decompress it")


def _head_lines(path: Path, limit: int = 20, compression=None) -> tuple[list[str], int]:
    """The first ``limit`` non-blank lines after any leading ``#`` comment lines, and how many lines those took."""
    lines, skipped = [], 0
    try:
        with _open(path, compression) as fh:
            for line in fh:
                if not lines and (not line.strip() or line.lstrip().startswith("#")):
                    skipped += 1
                    continue
                if line.strip():
                    lines.append(line)
                if len(lines) >= limit:
                    break
    except UnicodeDecodeError:
        raise _not_utf8(path, compression) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _damaged(path, exc) from None
    return lines, skipped


def _not_utf8(path: Path, compression=None) -> CSVError:
    """The error for a file that is not UTF-8 text: where the first undecodable byte is, and what to do."""
    with _open(path, compression, "rb") as fh:
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


def _check_layout(path: Path, sep: str, skip: int, compression=None) -> tuple[list[str], list[int], int, bool]:
    """Stream the file once: a header naming every column once, and no line with more fields than it.

    Returns ``(header, short lines, trailing, index)``: the lines that omit trailing empty fields (pandas
    pads them with missing values, as spreadsheets write them), how many unnamed columns end the
    header, each empty on every line (separators at the end of every line, as spreadsheets export
    columns they once formatted), which the caller drops, and whether its first name is blank
    (a saved pandas index, which the caller checks).  A line with more fields than the header is an error: pandas would
    quietly use the first column as the index.
    """
    try:
        with _open(path, compression) as fh:
            for _ in range(skip):
                fh.readline()
            reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)  # as pandas reads it below
            header = next((r for r in reader if r), None)  # (csv yields [] for a blank line, as pandas skips it)
            if header is None:
                raise CSVError(f"{path}: the file is empty")
            header = [h.strip() for h in header]
            trailing = 0  # "a,b,y,," : separators at the end of every line, two named columns left at least
            while len(header) - trailing > 2 and header[-1 - trailing] == "":
                trailing += 1
            index = len(header) > 2 and header[0] == ""  # ",a,b,y": pandas' to_csv with its index (checked later)
            named = header[index:len(header) - trailing]
            if len(set(named)) != len(named) or not all(named):
                repeated = sorted({h for h in named if h and named.count(h) > 1})
                why = f"{', '.join(repr(h) for h in repeated)} repeated" if repeated else "a blank name"
                raise CSVError(f"{path}: the header must name every column once ({why}), got {header}")
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
                elif trailing and (filled := [f for f in r[-trailing:] if f.strip()]):
                    raise CSVError(f"{path}: the last {'column has' if trailing == 1 else f'{trailing} columns have'} "
                                   f"no name in the header but line {line} holds '{_shown(filled[0])}' there; name "
                                   "it in the header")
                rows += 1
    except UnicodeDecodeError:
        raise _not_utf8(path, compression) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _damaged(path, exc) from None
    except csv.Error as exc:
        raise CSVError(f"{path}: malformed CSV ({exc})") from None
    if rows == 0:
        raise CSVError(f"{path}: no data rows after the header")
    return header, short, trailing, index


def _drop_saved_index(path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its unnamed first column when that holds a saved pandas index (the integers of a range,
    in any order); else an error naming the unnamed column."""
    first = frame.iloc[:, 0]
    values = pd.to_numeric(first, errors="coerce")
    if values.notna().all() and (values == values.round()).all():
        ordered = np.sort(values.to_numpy(dtype=np.float64))
        if np.array_equal(ordered, ordered[0] + np.arange(len(ordered))):
            return frame.iloc[:, 1:]
    shown = ", ".join(_shown(v) for v in first.iloc[:3])
    raise CSVError(f"{path}: the first column has no name in the header (its cells start {shown}); name it, or, if "
                   "it is a saved row index, re-save the file without it (pandas: to_csv(..., index=False))")


def read_csv(path, text_columns=()) -> pd.DataFrame:
    """Read a CSV file with a header row into a DataFrame (separator sniffed; missing cells as NaN).

    A file named ``.gz`` is decompressed (gzip).  ``text_columns``: header names whose cells
    stay text, not parsed as numbers by pandas (a column read with a decimal comma, where
    ``'1.500'`` is 1500 and pandas' 1.5 would lose the digits).

    Raises:
        CSVError: a missing or non-UTF-8 file, an empty file, a header with blank or
            repeated names, or a line whose field count differs from the header's;
            ``'-'`` (standard input is not read); compressed bytes other than gzip named ``.gz``.
    """
    if str(path) == "-":
        raise CSVError("reading a CSV from standard input ('-') is not supported; save the table to a file and give "
                       "its path")
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise CSVError(f"{path} is {'a folder' if path.is_dir() else 'not a regular file'}, not a CSV file")
        raise CSVError(f"CSV file not found: {path}")
    compression = _compression(path)
    lines, skip = _head_lines(path, compression=compression)
    if not lines:
        raise CSVError(f"{path}: the file is empty")
    with _any_field_size():
        sep = _sniff_separator(lines)
        header, short, trailing, index = _check_layout(path, sep, skip, compression)
    as_text = {i: str for i, name in enumerate(header) if name in set(text_columns)}
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True, na_values=EXTRA_MISSING,
                            index_col=False, low_memory=False, skiprows=skip, compression=compression,
                            dtype=as_text or None)
    except (pd.errors.ParserError, ValueError) as exc:
        raise CSVError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    if len(frame.columns) != len(header):
        raise CSVError(f"{path}: malformed CSV (the header reads as {len(header)} fields, the table as "
                       f"{len(frame.columns)})")
    frame.columns = header
    notes = []
    if trailing:
        frame = frame.iloc[:, :-trailing]
        notes.append("dropped the unnamed last column, empty on every line (each line ends with a separator)"
                     if trailing == 1 else f"dropped the {trailing} unnamed last columns, empty on every line (each "
                     f"line ends with {trailing} separators)")
    if index:
        start = frame.iloc[:, 0]
        frame = _drop_saved_index(path, frame)
        notes.append(f"dropped the unnamed first column: a saved pandas index (the integers {start.min()} to "
                     f"{start.max()}, one per row)")
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


#: A number's formatting around its digits: an accounting negative ``(12.5)``, a currency sign after any sign, a
#: trailing ``%``.  A percentage keeps its number (12.5, not 0.125): standardisation makes the scale irrelevant.
_PARENTHESES = re.compile(r"^\(([^()]*)\)$")
_CURRENCY = re.compile(r"^([+-]?)\s*[$€£¥]\s*")
_PERCENT = re.compile(r"\s*%$")
#: SAP's negative number, its minus sign last: ``'51.47-'`` is -51.47.
_TRAILING_MINUS = re.compile(r"^(\d[\d., \u00a0\u202f]*)-$")
#: Thousands grouped by a space, a no-break space (U+00A0) or a narrow no-break space (U+202F), as French exports
#: write them, well formed: 1 to 3 digits first (never a lone 0), then groups of 3 (``'1 065'``, ``'12 345,5'``).
_SPACES = "[ \u00a0\u202f]"
_SPACE_GROUPS = re.compile(rf"[+-]?(?!0{_SPACES})\d{{1,3}}({_SPACES}\d{{3}})+([.,]\d+)?")
#: Thousands separated by commas, well formed: 1 to 3 digits first (never a lone 0), then groups of 3 ("1,234.5").
THOUSANDS = re.compile(r"[+-]?(?!0,)\d{1,3}(,\d{3})+(\.\d+)?")
#: A decimal comma, digits grouped by dots or not: "14,23", "0,280", "1.001,00", "1065,0", "7,9e-05", and whole
#: numbers "19".  Grouped digits never start with 0 ("0.280" is no thousands grouping, as "0,280" is none above).
DECIMAL_COMMA = re.compile(r"[+-]?(\d+|[1-9]\d{0,2}(\.\d{3})+)(,\d+)?([eE][+-]?\d+)?")


def _unformatted(cells: pd.Series) -> pd.Series:
    """Text cells without currency signs, a trailing % or accounting parentheses: ``'($1,200)'`` -> ``'-1,200'``;
    a trailing minus put first (``'51.47-'`` -> ``'-51.47'``); spaces grouping thousands removed (``'1 065'`` ->
    ``'1065'``)."""
    out = cells.str.replace(_PARENTHESES, r"-\1", regex=True)
    out = out.str.replace(_CURRENCY, r"\1", regex=True)
    out = out.str.replace(_PERCENT, "", regex=True).str.replace(_TRAILING_MINUS, r"-\1", regex=True)
    spaced = out.str.fullmatch(_SPACE_GROUPS).fillna(False).astype(bool)
    return out.where(~spaced, out.str.replace(_SPACES, "", regex=True))


#: The ways of writing a number that a reader may not expect, with what each means, for the notes.
WRITTEN_FORMS = {"a trailing minus": "read as negative numbers (the minus sign last, as SAP writes it)",
                 "spaces grouping thousands": "read with spaces (or no-break spaces) grouping thousands"}


def _form_masks(present: pd.Series) -> dict:
    """``{form: boolean array}``: which of the stripped text cells ``present`` are written in each form of
    :data:`WRITTEN_FORMS`."""
    bare = present.str.replace(_PARENTHESES, r"-\1", regex=True).str.replace(_CURRENCY, r"\1", regex=True)
    bare = bare.str.replace(_PERCENT, "", regex=True)
    found = {"a trailing minus": bare.str.fullmatch(_TRAILING_MINUS),
             "spaces grouping thousands": bare.str.replace("-$", "", regex=True).str.fullmatch(_SPACE_GROUPS)}
    return {form: hit.fillna(False).to_numpy(dtype=bool) for form, hit in found.items()}


def written_forms(cells: pd.Series, numbers: pd.Series) -> dict:
    """``{form: "'51.47-' -> -51.47 (200 cells)"}`` for each form of :data:`WRITTEN_FORMS` found among the text cells
    ``cells`` that were read as ``numbers``: the first such cell, its number and how many cells have the form."""
    present = cells.dropna().astype("string").str.strip()
    out = {}
    for form, hit in _form_masks(present).items():
        hit = hit & numbers.reindex(present.index).notna().to_numpy()
        if hit.any():
            k = int(hit.argmax())
            out[form] = f"'{_shown(present.iloc[k])}' -> {numbers[present.index[k]]:g}, {int(hit.sum())} cell(s)"
    return out


def number_cells(cells: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Text cells read as float64 numbers (NaN where a cell is not one), in the point or the decimal-comma convention.

    Point: ``'$16,368.94'`` -> 16368.94 (commas only in well-formed thousands groups: ``'0,280'`` is no number),
    ``'-12.5%'`` -> -12.5, ``'(7)'`` -> -7.  Decimal comma: ``'1.001,50'`` -> 1001.5, ``'0,280'`` -> 0.28.
    """
    bare = _unformatted(cells.astype("string").str.strip())
    if decimal_comma:
        fits = bare.str.fullmatch(DECIMAL_COMMA).fillna(False).astype(bool)
        text = bare.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        grouped = bare.str.fullmatch(THOUSANDS).fillna(False).astype(bool)
        fits = grouped | ~bare.str.contains(",", regex=False).fillna(True).astype(bool)
        text = bare.where(~grouped, bare.str.replace(",", "", regex=False))
    return pd.to_numeric(text.where(fits), errors="coerce").astype(np.float64)


def _readings(cells: pd.Series, separator: str, decimal=None) -> tuple[pd.Series, pd.Series]:
    """The present cells read with a decimal point and with a decimal comma (NaN where a cell does not fit;
    no decimal comma in a comma-separated file unless ``decimal="comma"``; only the convention ``decimal`` names
    when it is given)."""
    point = number_cells(cells)
    comma = number_cells(cells, decimal_comma=True) if decimal == "comma" or (decimal is None and separator != ",") \
        else point * np.nan
    return (point * np.nan if decimal == "comma" else point), comma


def checked_decimal(decimal, where: str = "read_csv_table"):
    """``decimal`` when it is ``None``, ``"point"`` or ``"comma"``; else an NnlabValueError naming those."""
    if decimal is not None and decimal not in DECIMAL:
        raise NnlabValueError(f"{where}: decimal must be 'point', 'comma' or None (decided from the file's cells), "
                              f"got {decimal!r}")
    return decimal


def file_convention(frame: pd.DataFrame, separator: str) -> tuple:
    """``(convention, evidence)``: ``"decimal comma"`` or ``"point"`` when some text column of ``frame`` can only be
    read one way and none only the other (``'0,280'`` decides for the comma, ``'1,234.5'`` for the point), with
    the first such column and cell in words; else ``(None, None)``."""
    decided = {}
    for name in frame.columns:
        if frame[name].dtype.kind in "biuf":
            continue
        present = _text(frame[name]).dropna()
        point, comma = _readings(present, separator)
        if point.notna().all() and comma.isna().any() and present.str.contains(",", regex=False).any():
            decided.setdefault("point", f"'{name}' holds '{_shown(present[comma.isna()].iloc[0])}'")
        elif comma.notna().all() and point.isna().any():
            decided.setdefault("decimal comma", f"'{name}' holds '{_shown(present[point.isna()].iloc[0])}'")
    return next(iter(decided.items())) if len(decided) == 1 else (None, None)


def written_convention(text: pd.DataFrame, separator: str) -> tuple:
    """``(convention, evidence)`` of a file read all as text (``text``): ``"decimal comma"`` when some cell reads
    only with a decimal comma (``'307,0'``), ``"point"`` when some cell holding a '.' or ',' reads only with a
    point (``'0.560'``, ``'13.2'``, ``'1,234.5'``), and no cell decides the other, with the first such cell in
    words; else ``(None, None)``.  Unlike :func:`file_convention`, float columns count: predict reads the new
    file's text against the convention its model was trained with."""
    decided = {}
    for name in text.columns:
        present = _text(text[name]).dropna()
        point, comma = _readings(present, separator)
        marked = present.str.contains(r"[.,]", regex=True).to_numpy(dtype=bool)
        for convention, only in (("point", point.notna() & comma.isna() & marked),
                                 ("decimal comma", comma.notna() & point.isna())):
            if only.any():
                decided.setdefault(convention, f"'{name}' holds '{_shown(present[only.to_numpy()].iloc[0])}'")
    return next(iter(decided.items())) if len(decided) == 1 else (None, None)


def read_numbers(what: str, cells: pd.Series, separator: str, prefer=None, decimal=None):
    """``(numbers, convention, by_file)`` of a text column whose every present cell is a number, else
    ``(None, None, False)``; ``by_file`` when only ``prefer`` decided the convention.

    ``decimal`` (``"point"`` or ``"comma"``, the ``--decimal`` option) admits that convention alone.

    ``what`` names the column in messages (``"column 'price'"``).
    The convention is ``"point"`` or ``"decimal comma"``; the decimal comma is considered only in a file
    separated by something else than a comma.  A cell read differently by the two conventions
    (``'10,725'``: 10725 or 10.725) with no cell deciding between them (here, or ``prefer``, the convention
    the file's other columns decided: :func:`file_convention`), or a column mixing the two, is an error.
    """
    present = cells.dropna()
    if present.empty:
        return None, None, False
    point, comma = _readings(present, separator, decimal)
    point_ok, comma_ok = point.notna().all(), comma.notna().all()
    differ = (point != comma).to_numpy()
    by_file = bool(point_ok and comma_ok and differ.any() and prefer is not None)
    if by_file:
        point_ok, comma_ok = prefer == "point", prefer == "decimal comma"
    if point_ok and comma_ok and differ.any():
        k = int(differ.argmax())
        raise CSVError(f"{what}: '{_shown(present.iloc[k])}' (line {_line(present.index[k])}) reads as "
                       f"{point.iloc[k]:g} with a thousands comma or {comma.iloc[k]:g} with a decimal comma, and "
                       "no cell of the file decides which; pass --decimal point or --decimal comma to say which "
                       "(library: decimal='point' or 'comma'), or re-save the file with unambiguous numbers (e.g. "
                       "without thousands separators)")
    if point_ok or comma_ok:
        _refuse_mixed_percent(what, present, point if point_ok else comma)
    if point_ok:
        return point.reindex(cells.index), "point", by_file
    if comma_ok:
        return comma.reindex(cells.index), "decimal comma", by_file
    only_point, only_comma = point.notna() & comma.isna(), comma.notna() & point.isna()
    if only_point.any() and only_comma.any():
        a, b = present[only_point].iloc[0], present[only_comma].iloc[0]
        raise CSVError(f"{what} mixes number formats: '{_shown(a)}' (line {_line(present[only_point].index[0])})"
                       f" reads with a decimal point, '{_shown(b)}' (line {_line(present[only_comma].index[0])}) "
                       "only with a decimal comma; write the column in one format")
    return None, None, False


def _refuse_mixed_percent(what: str, present: pd.Series, numbers: pd.Series) -> None:
    """A number column with '%' on some cells and not on others is an error naming one cell of each kind and their
    counts.  Why refuse: ``'11.84%'`` reads as 11.84 and ``'0.0847'`` as 0.0847, the same quantity 100 times apart
    (a percentage and a fraction); which one the column means is the user's decision.  A plain 0 is the same
    either way, so it mixes nothing."""
    percent = present.str.contains(_PERCENT, regex=True).fillna(False).to_numpy(dtype=bool)
    plain = ~percent & (numbers.to_numpy() != 0)
    if percent.any() and plain.any():
        a, b = present[percent], present[plain]
        raise CSVError(f"{what} mixes percentages and plain numbers: '{_shown(a.iloc[0])}' (line {_line(a.index[0])})"
                       f" in {len(a)} row(s), '{_shown(b.iloc[0])}' (line {_line(b.index[0])}) without '%' in "
                       f"{len(b)} row(s), which may be a fraction 100 times smaller; write the column in one form")


def _text(series: pd.Series) -> pd.Series:
    """Text cells stripped of surrounding spaces; empty ones missing."""
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _formatted_example(cells: pd.Series, numbers: pd.Series):
    """``"'$1,200' -> 1200"`` for the first cell that plain number parsing would not read, or None when none
    (cells in a form of :data:`WRITTEN_FORMS` have their own note: :func:`written_forms`)."""
    present = cells.dropna()
    odd = pd.to_numeric(present, errors="coerce").isna().to_numpy()
    for hit in _form_masks(present.astype("string").str.strip()).values():
        odd = odd & ~hit
    if not odd.any():
        return None
    value = numbers[present.index].to_numpy()
    telling = odd & (value != np.round(value))  # '14,23' shows a decimal comma better than '0,0'
    k = int((telling if telling.any() else odd).argmax())
    return f"'{_shown(present.iloc[k])}' -> {numbers[present.index[k]]:g}"


def _convention_words(convention: str) -> str:
    if convention == "decimal comma":
        return "with a decimal comma"
    return "without their currency signs, thousands separators, '%' or accounting parentheses"


def case_variants(cells: pd.Series) -> list:
    """Groups of distinct values that differ only in case, e.g. ``[['No', 'no']]`` (cells already stripped)."""
    values = pd.Series(cells.dropna().unique()).astype(str)
    groups = values.groupby(values.str.casefold()).agg(list)
    return [sorted(g) for g in groups if len(g) > 1]


def _refuse_case_variants(target, y: pd.Series) -> None:
    """A text target whose labels differ only in case: which of them are one class is the user's decision."""
    groups = case_variants(y)
    if groups:
        shown = "; ".join(" / ".join(f"'{v}' ({int((y == v).sum())} rows)" for v in g) for g in groups[:3])
        raise CSVError(f"target '{target}' holds labels that differ only in case: {shown}; write each class in "
                       "one spelling (or rename one if they are different classes)")


def did_you_mean(name, names) -> str:
    """``" (did you mean 'Alcohol'?)"`` when one of ``names`` equals ``name`` but for case and surrounding spaces,
    or is close to it in spelling (``difflib.get_close_matches``); else ``""``."""
    names = [str(n) for n in names]
    same = [n for n in names if n.strip().casefold() == str(name).strip().casefold()]
    close = same or difflib.get_close_matches(str(name).strip(), names, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _target(frame: pd.DataFrame, target: str, notes: list, task=None, prefer=None, decimal=None):
    """The target column with its missing rows dropped (and counted).

    A mostly numeric target with a few words in it is an error naming them when ``task`` is
    ``None``; with ``"regression"`` those rows are dropped, with a note naming them; with
    ``"classification"`` every value is a class.  ``prefer``, ``decimal``: the file's number convention and the
    one asked for (:func:`read_numbers`).
    """
    if target not in frame.columns:
        columns = list(frame.columns)
        hint = ""
        others = [s for s in SEPARATORS if s != frame.attrs.get("separator", ",") and any(s in c for c in columns)]
        if others:
            shown = "tab" if others[0] == "\t" else f"'{others[0]}'"
            hint = f" (the header holds {shown}: is the file {shown}-separated?)"
        near = did_you_mean(target, columns)
        raise CSVError(f"target column '{target}' not found{near}; the columns are: {', '.join(map(str, columns))}"
                       f"{hint}")
    y = frame[target]
    if y.dtype.kind not in "biuf":
        y = _text(y)
        numbers, convention, _ = (None, None, False) if task == "classification" else \
            read_numbers(f"target '{target}'", y, frame.attrs.get("separator", ","), prefer, decimal)
        if numbers is not None:  # numbers that pandas kept as text ("151,000", "50.1%", "$5.00"): use them as numbers
            if (example := _formatted_example(y, numbers)) is not None:
                notes.append(f"target '{target}' read as numbers {_convention_words(convention)} ({example})")
            notes += [f"target '{target}' ({example}) {WRITTEN_FORMS[form]}"
                      for form, example in written_forms(y, numbers).items()]
            y = numbers
        else:
            numbers = pd.to_numeric(y, errors="coerce")
            if task != "classification" and numbers.notna().sum() >= 0.5 * y.notna().sum():
                words = y[numbers.isna() & y.notna()]
                shown = ", ".join(f"'{_shown(v)}' (line {_line(i)})" for i, v in words.iloc[:3].items())
                shown += ", ..." if len(words) > 3 else ""
                if task is None:
                    raise CSVError(f"target '{target}' holds numbers but {len(words)} cell(s) are not: {shown}; "
                                   "correct or blank them, or pass --task regression to drop those rows")
                notes.append(f"dropped {len(words)} row(s) whose target '{target}' is not a number: {shown}")
                y = numbers
            else:
                _refuse_case_variants(target, y)
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


#: At most this many distinct whole numbers beside words (in at least a tenth of the cells: not a stray typo) make a
#: column of category codes, not of measurements.
CODE_LEVELS = 10


def _refuse_numbers_with_words(name, present: pd.Series, separator: str, decimal=None) -> None:
    """A text column most of whose present cells are numbers is an error naming its other words and their counts.

    Why refuse: one-hot encoding a column of numbers (or dropping it as having too many categories)
    throws away what it measures; whether ``'unknown'`` means missing is the user's decision.  Not refused:
    at most ``CODE_LEVELS`` distinct whole numbers beside words in at least a tenth of the cells (``'0'`` to ``'3'``
    and ``'4+'``), category codes, which stay categories.
    """
    point, comma = _readings(present, separator, decimal)
    numbers = (point.notna() | comma.notna()).to_numpy()
    like = numbers | present.str.fullmatch(DECIMAL_COMMA).to_numpy(dtype=bool)  # (decimal commas in a ',' file)
    if numbers.all() or like.mean() <= 0.5:
        return
    codes = (point if decimal != "comma" else comma).dropna().to_numpy()
    if 0.5 < numbers.mean() <= 0.9 and np.all(codes == np.round(codes)) and len(np.unique(codes)) <= CODE_LEVELS:
        return  # a few whole numbers beside words as common as a category ('0' ... '3', '4+'): codes, one-hot encoded
    words = present[~numbers]
    counts = words.value_counts(sort=True)
    shown = ", ".join(f"'{_shown(v)}' in {c} row(s)" for v, c in counts.iloc[:4].items())
    shown += f" and {len(counts) - 4} other value(s)" if len(counts) > 4 else ""
    if decimal == "point" and words.str.fullmatch(DECIMAL_COMMA).all():
        fix = "decimal commas, but the file was said to use decimal points (--decimal point): give --decimal comma"
    elif separator == "," and decimal is None and words.str.fullmatch(DECIMAL_COMMA).all():
        fix = ("decimal commas in a comma-separated file: write the column with decimal points (or save the file "
               "';'-separated)")
    elif (spaced := _numbers_but_for_spaces(words, separator, decimal)) is not None:
        fix = (f"'{_shown(spaced)}' reads as a number once its spaces are removed, but a space may only group "
               "thousands in groups of 3 digits ('1 065'); correct them")
    else:
        fix = "correct or blank them"
        if all(len(str(v)) <= 40 and "," not in str(v) for v in counts.index[:4]):  # (words, not stray long cells)
            fix += f", or pass --na-values '{','.join(str(v) for v in counts.index[:4])}' to read them as missing"
    others = " (the column's other values are numbers)" if numbers.any() else ""
    raise CSVError(f"non-numeric value '{_shown(words.iloc[0])}' in column '{name}', line {_line(words.index[0])}"
                   f"{others}: {shown}; {fix}")


def _numbers_but_for_spaces(words: pd.Series, separator: str, decimal=None):
    """The first of the cells ``words`` that reads as a number once every space (no-break ones too) is removed
    (``'10 65'``, ``'1 0650,5'``), else None: never a word to read as missing (--na-values)."""
    bare = words.astype("string").str.replace(rf"\s|{_SPACES}", "", regex=True)
    point, comma = _readings(bare, separator, decimal)
    fits = (point.notna() | comma.notna()).to_numpy()
    return words.iloc[int(fits.argmax())] if fits.any() else None


def _text_column(name, cells: pd.Series, keep_id: bool, max_categories: int, categorical: str, separator=",",
                 decimal=None):
    """``(cells, reason to drop or None)`` of a text column (stripped cells, missing ones NaN).

    Text in a column most of whose cells are numbers is an error, as is any text with ``categorical="none"``.
    """
    present = cells.dropna()
    if categorical == "none":
        bad = pd.to_numeric(present, errors="coerce").isna().to_numpy()
        k = int(bad.argmax())
        raise CSVError(f"non-numeric value '{_shown(present.iloc[k])}' in column '{name}', "
                       f"line {_line(present.index[k])} (--categorical none makes text an error; without it text "
                       "columns are one-hot encoded)")
    _refuse_numbers_with_words(name, present, separator, decimal)
    distinct, n = int(present.nunique()), len(present)
    if keep_id:
        return cells, None
    if n >= 10 and distinct >= ID_SHARE * n:
        return cells, f"identifier-like: {distinct} distinct values in {n} rows"
    if distinct > max_categories:
        return cells, f"{distinct} distinct values, more than the cap of {max_categories} categories"
    return cells, None


def _stripped(frame: pd.DataFrame, notes: list) -> pd.DataFrame:
    """``frame`` with surrounding spaces removed from its text cells, and a note counting the cells that had them."""
    changed, out = {}, frame.copy()
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind in "biuf":
            continue
        text = col.astype("string")
        stripped = text.str.strip()
        count = int((text != stripped).fillna(False).sum())
        if count:
            out[name] = stripped.astype(object).where(col.notna(), np.nan)
            changed[name] = count
    if changed:
        shown = ", ".join(f"'{c}' ({k})" for c, k in list(changed.items())[:4]) + (", ..." if len(changed) > 4 else "")
        notes.append(f"removed spaces around {sum(changed.values())} text cell(s) in column(s) {shown}")
    out.attrs = frame.attrs
    return out


def numeric_tokens(tokens) -> list:
    """The ``--na-values`` tokens that are numbers (``'-999'`` -> -999.0): they also mark equal cells of numeric
    columns.  One function for training and ``nnlab predict``, so both read a file alike."""
    return [float(v) for v in pd.to_numeric(pd.Series(list(tokens), dtype=object), errors="coerce").dropna()]


def mark_missing(frame: pd.DataFrame, tokens, notes: list) -> pd.DataFrame:
    """``frame`` with every cell whose text is one of ``tokens`` (``--na-values``) missing, and a note counting them.

    A token that is a number (``-999``) also marks equal cells of numeric columns.
    """
    tokens = [str(t).strip() for t in tokens]
    numbers = numeric_tokens(tokens)
    out, counts = frame.copy(), {}
    for name in frame.columns:
        col = frame[name]
        hit = col.isin(numbers) if col.dtype.kind in "biuf" else col.astype("string").str.strip().isin(tokens)
        hit = hit.fillna(False).astype(bool)
        if hit.any():
            out[name] = col.mask(hit)
            counts[name] = int(hit.sum())
    out.attrs = frame.attrs
    shown = ", ".join(f"'{c}' ({k})" for c, k in counts.items()) if counts else "none found"
    notes.append(f"--na-values {','.join(tokens)}: {sum(counts.values())} cell(s) read as missing, as blank cells are "
                 f"(per column: {shown})")
    return out


#: The first text cell of a totals row, compared case-insensitively.
TOTAL_WORDS = ("total", "totals", "sum", "gesamt", "summe", "total général")


def _totals_row(frame: pd.DataFrame, decimal=None):
    """Why the last row of ``frame`` is a totals row, in words, or None when it is not one.

    A totals row: its first text cell is one of :data:`TOTAL_WORDS` (``'Total:'`` too), or its numbers equal, to
    1e-6 relative, the sums of the rows above in most of the numeric columns (at least 2; a column counts when its
    last cell is a number and some cell above it is a number other than 0).  Why look: a spreadsheet's totals line
    learned from as a row is a point hundreds of times outside the others, which no message would show.
    """
    if len(frame) < 4:
        return None
    separator, word, sums, columns = frame.attrs.get("separator", ","), None, 0, 0
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind in "biuf":
            values = col.to_numpy(dtype=np.float64)
        else:
            point, comma = _readings(_text(col), separator, decimal)
            values = (point if point.notna().sum() >= comma.notna().sum() else comma).to_numpy(dtype=np.float64)
            cell = _text(col).iloc[-1]
            if word is None and not pd.isna(cell) and np.isnan(values[-1]):
                word = str(cell)
        above = values[:-1][~np.isnan(values[:-1])]
        if np.isnan(values[-1]) or not np.any(above != 0):
            continue
        columns += 1
        total = float(np.sum(above))
        sums += bool(abs(values[-1] - total) <= 1e-6 * abs(total))
    if word is not None and word.strip().rstrip(":").strip().casefold() in TOTAL_WORDS:
        return f"its first text cell is '{_shown(word)}'"
    if sums >= 2 and sums > columns / 2:
        return f"its numbers are the sums of the rows above in {sums} of {columns} numeric columns"
    return None


def _dots_as_thousands(frame: pd.DataFrame, float_cells, evidence: str, notes: list) -> pd.DataFrame:
    """``frame`` with its float columns that ``float_cells`` holds the text of (see :func:`prepare_table`) read
    from that text with a decimal comma, dots grouping thousands (``'1.500'`` -> 1500), in a decimal-comma file.

    A cell that is no such number (``'1.5'``: no group of three digits after the dot) is an
    error naming the column and the line.  Why the text: pandas' float has already lost it
    (``'1.500'`` and ``'1.5'`` are both 1.5).
    """
    floats = [n for n in frame.columns if frame[n].dtype.kind == "f"]
    names = [n for n in floats if float_cells is not None and n in float_cells.columns]
    if given := [n for n in floats if n not in names]:
        shown = ", ".join(f"'{n}'" for n in given[:3]) + (", ..." if len(given) > 3 else "")
        notes.append(f"float column(s) {shown} of a decimal-comma table kept as given, without their text (a file "
                     "read by read_csv_table has its '1.500' read as 1500 there)")
    out, changed = frame.copy(), []
    for name in names:
        # (cells --na-values made missing stay missing; rows are matched by index)
        cells = _text(float_cells[name].reindex(frame.index)).where(frame[name].notna())
        values = number_cells(cells, decimal_comma=True)
        bad = (values.isna() & cells.notna()).to_numpy()
        if bad.any():
            k = int(bad.argmax())
            cell, line = _shown(cells.iloc[k]), _line(cells.index[k])
            if "." not in cell:  # ('inf', '1e999': no dot to blame)
                raise CSVError(f"column '{name}': '{cell}' (line {line}) is not a number as this file writes them, "
                               f"with decimal commas ({evidence}) and dots grouping thousands; correct or blank it")
            raise CSVError(f"column '{name}': '{cell}' (line {line}) has a decimal "
                           f"point, but this file writes decimal commas ({evidence}), where a dot groups thousands "
                           "('1.500' is 1500); write the column with decimal commas (or pass --decimal point if the "
                           "whole file uses decimal points)")
        differ = (values != frame[name]).to_numpy() & cells.notna().to_numpy()
        if differ.any():
            k = int(differ.argmax())
            changed.append(f"'{name}' ('{_shown(cells.iloc[k])}' -> {values.iloc[k]:g})")
        out[name] = values
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        notes.append(f"column(s) {shown} read with a decimal comma and dots grouping thousands, as the file's other "
                     f"columns ({evidence})")
    out.attrs = frame.attrs
    return out


#: A number a dot may group the thousands of: one dot, exactly 3 digits after it, the first group no lone 0.
_DOT_GROUP = re.compile(r"[+-]?[1-9]\d{0,2}\.\d{3}")


def _refuse_undecided_dots(frame: pd.DataFrame, float_cells) -> None:
    """In a file no cell of which decides the convention (not separated by commas, no ``--decimal``), a CSVError
    naming the first float column whose every dotted cell may be a thousands group (``'2.940'``: 2.94 or 2940) and
    both readings, as for an undecided comma (:func:`read_numbers`).  A float cell with other than 3 decimals
    (``'13.2'``, ``'0.280'``) decides for the point: then nothing is refused."""
    undecided = None
    for name in [n for n in frame.columns if frame[n].dtype.kind == "f" and n in float_cells.columns]:
        cells = _text(float_cells[name].reindex(frame.index)).where(frame[name].notna()).dropna()
        dotted = cells[cells.str.contains(".", regex=False).to_numpy(dtype=bool)]
        if not dotted.str.fullmatch(_DOT_GROUP).to_numpy(dtype=bool).all():
            return
        if undecided is None and len(dotted):
            undecided = name, dotted
    if undecided is not None:
        name, dotted = undecided
        cell, grouped = dotted.iloc[0], number_cells(dotted.iloc[:1], decimal_comma=True).iloc[0]
        raise CSVError(f"column '{name}': '{_shown(cell)}' (line {_line(dotted.index[0])}) reads as {float(cell):g} "
                       f"with a decimal point or {grouped:g} with a dot grouping thousands, and no cell of the file "
                       "decides which; pass --decimal point or --decimal comma to say which (library: "
                       "decimal='point' or 'comma'), or re-save the file with unambiguous numbers (e.g. without "
                       "thousands separators)")


def _duplicate_rows(frame: pd.DataFrame, notes: list) -> int:
    """How many rows of ``frame`` repeat an earlier row in every column (missing cells alike), with a note naming
    the first copy and the line it repeats."""
    key = pd.util.hash_pandas_object(frame, index=False)
    copies = key.duplicated().to_numpy()
    if copies.any():
        k = int(copies.argmax())
        first = key.index[int((key == key.iloc[k]).to_numpy().argmax())]
        notes.append(f"{int(copies.sum())} row(s) repeat an earlier row in every column, the target too (line "
                     f"{_line(key.index[k])} repeats line {_line(first)}): kept, each copy weighs as one more row")
    return int(copies.sum())


def duplicate_split_note(table: Table, train_rows, test_rows) -> str | None:
    """When the table repeats rows: one line saying how many of the ``test_rows`` (positions in ``table.y``) have
    an exact copy, features and target, among the ``train_rows``; else None.  Why: a random split puts copies on
    both sides, and a test row the model has trained on makes the test score look better than on new rows."""
    if not table.duplicate_rows:
        return None
    rows = table.X.assign(**{"\0target": table.y})
    key = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    both = int(np.isin(key[np.asarray(test_rows)], key[np.asarray(train_rows)]).sum())
    said = f"the file repeats {table.duplicate_rows} row(s) and the train/test split is random, so copies may fall " \
           "on both sides: "
    if not both:
        return said + f"here none of the {len(test_rows)} test rows has an exact copy among the other rows"
    return said + (f"{both} of the {len(test_rows)} test rows have an exact copy among the other rows, which makes "
                   "the test score look better than it would on new rows")


def prepare_table(frame: pd.DataFrame, target: str, task=None, keep_id_columns=False, max_categories=50,
                  categorical="auto", source="", description="", class_names=None, na_values=(),
                  decimal=None, float_cells=None) -> Table:
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
        na_values: cell texts that mean missing besides pandas' own ("NA", "n/a", "null", ...), e.g. ``["unknown"]``.
        decimal: ``"point"`` (``'1,200'`` is 1200), ``"comma"`` (``'1,2'`` is 1.2, ``'1.500'`` is 1500) or ``None``
            (decided from the file's cells: see the module docstring).
        float_cells: the text of ``frame``'s float columns as its file wrote them (a DataFrame with ``frame``'s
            index; :func:`read_csv_table` gives it).  In a decimal-comma file they are read from that text, dots
            grouping thousands; without it (or for a column it lacks) float columns keep their values.
    Raises:
        CSVError: with the reason and the place.
        NnlabValueError: ``decimal`` is not one of those.
    """
    decimal = checked_decimal(decimal, "prepare_table")
    notes: list = []
    if frame.attrs.get("comment_lines"):
        notes.append(f"skipped {frame.attrs['comment_lines']} comment line(s) before the header")
    notes += frame.attrs.get("read_notes", [])
    first_row = int(frame.attrs.get("comment_lines", 0))  # read_csv shifts the index by the comment lines
    frame = _stripped(frame, notes)
    if (why := _totals_row(frame, decimal)) is not None:
        notes.append(f"dropped line {_line(frame.index[-1])}, a totals row ({why})")
        frame = frame.iloc[:-1]
    if na_values:
        frame = mark_missing(frame, na_values, notes)
    separator = frame.attrs.get("separator", ",")
    if decimal is not None:
        prefer, evidence = DECIMAL[decimal], f"--decimal {decimal}"
    else:
        prefer, evidence = file_convention(frame, separator)
    if prefer is None and float_cells is not None and separator != ",":
        _refuse_undecided_dots(frame, float_cells)
    if prefer == "decimal comma":
        frame = _dots_as_thousands(frame, float_cells, evidence, notes)
    y, rows_dropped = _target(frame, target, notes, task, prefer, decimal)
    task, reason = infer_task(y, task)
    if y.dtype.kind in "biuf" and (why := _numeric_column(target, y, False, first_row)[1]) is not None:
        notes.append(f"the target '{target}' looks like an identifier ({why.removeprefix('identifier-like: ')}): its "
                     "values are labels of rows, not a quantity")
    kept = frame.loc[y.index]
    duplicates = _duplicate_rows(kept, notes)
    columns, dropped, prescale, numeric, texts = {}, {}, {}, [], []
    formatted, decimal_comma, by_file_columns, forms = {}, [], [], {}
    for name in frame.columns:
        if name == target:
            continue
        col = kept[name]
        if col.isna().all():
            dropped[name] = "no values"
            continue
        if col.dtype.kind in "biuf":
            values, why, k = _numeric_column(name, col, keep_id_columns, first_row)
            if prefer == "decimal comma" and col.dtype.kind in "iuf":  # whole numbers too: a new file's '1.000'
                decimal_comma.append(name)                              # is 1000 there, not pandas' 1.0
        else:
            cells = _text(col)
            numbers, convention, by_file = read_numbers(f"column '{name}'", cells, separator, prefer, decimal)
            if by_file:
                by_file_columns.append(name)
            if numbers is not None:
                if convention == "decimal comma":
                    decimal_comma.append(name)
                if (example := _formatted_example(cells, numbers)) is not None:
                    formatted.setdefault(convention, []).append((name, example))
                for form, example in written_forms(cells, numbers).items():
                    forms.setdefault(form, []).append((name, example))
                values, why, k = _numeric_column(name, numbers, keep_id_columns, first_row)
            else:
                cells, why = _text_column(name, cells, keep_id_columns, max_categories, categorical, separator,
                                          decimal)
                values, k = cells.to_numpy(dtype=object, na_value=np.nan), None
                if why is None and (groups := case_variants(cells)):
                    shown = "; ".join(" / ".join(f"'{v}'" for v in g) for g in groups[:3])
                    notes.append(f"column '{name}' holds values that differ only in case, kept as different "
                                 f"categories: {shown}")
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
                scaled = f"divided by 2^{k}" if k > 0 else f"multiplied by 2^{-k}"  # (never "divided by 2^-995")
                notes.append(f"column '{name}' reaches {np.nanmax(np.abs(values)):.3g} in magnitude: {scaled}"
                             " (exact) before standardising, which leaves the standardised values as they were")
    for convention, read in formatted.items():
        names = ", ".join(f"'{c}' ({example})" for c, example in read[:3])
        names += f" and {len(read) - 3} more" if len(read) > 3 else ""
        notes.append(f"column(s) {names} read as numbers {_convention_words(convention)}")
    for form, read in forms.items():
        names = ", ".join(f"'{c}' ({example})" for c, example in read[:3])
        notes.append(f"column(s) {names}{f' and {len(read) - 3} more' if len(read) > 3 else ''} {WRITTEN_FORMS[form]}")
    if by_file_columns:
        names = ", ".join(f"'{c}'" for c in by_file_columns[:3]) + (", ..." if len(by_file_columns) > 3 else "")
        notes.append(f"column(s) {names} read either way, so with a {prefer} as the file's other columns ({evidence})")
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
                 notes, rows_dropped, source, description, decimal_comma, list(na_values), decimal, duplicates)


def label_text(value) -> str:
    """A class label as text: ``3`` for 3 and 3.0, ``2.5``, or the label itself."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def read_csv_table(path, target, task=None, keep_id_columns=False, max_categories=50, categorical="auto",
                   na_values=(), decimal=None) -> Table:
    """:func:`read_csv` then :func:`prepare_table` (its arguments, ``decimal`` included, described there).

    ``decimal="point"`` reads ``'1,200'`` as 1200 and ``"comma"`` reads it as 1.2 (and ``'1.500'`` as 1500);
    ``None`` decides from the file's cells, and refuses a comma no cell decides.
    """
    decimal = checked_decimal(decimal, "read_csv_table")
    frame = read_csv(path)
    floats = [n for n in frame.columns if frame[n].dtype.kind == "f"]
    # a decimal comma is possible only here (read_numbers): then the float columns' text is needed, since pandas'
    # float has lost it ('1.500' and '1.5' are both 1.5)
    comma_possible = decimal == "comma" or (decimal is None and frame.attrs["separator"] != ",")
    float_cells = read_csv(path, text_columns=floats)[floats] if floats and comma_possible else None
    path = Path(path)
    table = prepare_table(frame, target, task, keep_id_columns, max_categories, categorical, source=str(path),
                          na_values=na_values, decimal=decimal, float_cells=float_cells)
    table.description = f"{path.name}: {len(table.y)} rows, {len(table.features_used)} feature columns"
    return table


def bundled_table(name: str) -> Table:
    """A bundled scikit-learn data set through the same :func:`prepare_table` as a CSV."""
    frame, classes, description = load_bundled(name)
    return prepare_table(frame, "target", None, keep_id_columns=True, class_names=classes,
                         source=f"sklearn.datasets.load_{name}", description=description)
