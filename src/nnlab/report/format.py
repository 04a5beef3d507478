"""How numbers, tables and figures look in REPORT.md: the templates' filters.

Every filter refuses a missing number (``None``, NaN, a string where a number belongs)
instead of printing it, so a template that reaches for a value a stage did not
produce fails loudly rather than writing "None" or "nan" into the report.
"""

from __future__ import annotations

import math
import numbers

from nnlab.errors import NnlabValueError


def _number(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise NnlabValueError(f"report: {where} expected a number, got {x!r}")
    value = float(x)
    if not math.isfinite(value):
        raise NnlabValueError(f"report: {where} expected a finite number, got {x!r}")
    return value


def g(x, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits; scientific notation below 1e-3 and from 1e5."""
    x = _number(x, "g")
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def pct(x, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.9825 -> "98.25%"``."""
    return f"{100 * _number(x, 'pct'):.{digits}f}%"


def points(x, digits: int = 2) -> str:
    """A difference of two fractions in percentage points: ``0.025 -> "2.50 percentage points"``."""
    return f"{100 * _number(x, 'points'):.{digits}f} percentage points"


def sci(x, digits: int = 1) -> str:
    """Scientific notation: ``0.000131 -> "1.3e-04"``."""
    return f"{_number(x, 'sci'):.{digits}e}"


def upto(x, digits: int = 2) -> str:
    """An upper bound in scientific notation: ``|x|`` rounded *up* to ``digits`` significant digits.

    For "within" and "at most": ``1.049e-05 -> "1.1e-05"``, where :func:`sci` would print
    ``"1.0e-05"``, a bound the number exceeds.
    """
    value = abs(_number(x, "upto"))
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(value)) - (digits - 1)
    mantissa = math.ceil(round(value / 10.0**exponent, 9))  # round() first: 1.1 / 0.1 must not become 12
    return f"{mantissa * 10.0**exponent:.{digits - 1}e}"


def fixed(x, digits: int = 2) -> str:
    """Fixed decimals: ``650.571 -> "650.57"``."""
    return f"{_number(x, 'fixed'):.{digits}f}"


def num(x) -> str:
    """A configuration value as written (``0.05``, ``800``, ``1e-06``)."""
    return f"{_number(x, 'num'):g}"


def and_join(items) -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    items = [str(i) for i in items]
    if not items:
        raise NnlabValueError("report: and_join got an empty list")
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def table(header, rows, formats=None) -> str:
    """A Markdown table.

    Args:
        header: the column titles.
        rows: one sequence of cells per row.
        formats: per column, the name of a filter (``"g"``, ``"pct"``, ...) applied to its
            cells, or ``None`` to print the cell as it is; ``None`` for no formatting at all.
    """
    formats = formats or [None] * len(header)
    if len(formats) != len(header) or any(len(row) != len(header) for row in rows):
        raise NnlabValueError(f"report: table with {len(header)} columns got rows of {sorted({len(r) for r in rows})}"
                              f" cells and {len(formats)} formats")
    cells = [[FILTERS[f](v) if f else str(v) for f, v in zip(formats, row)] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def figure(figures_rel: str, sid: str, figures: dict, key: str, caption: str) -> str:
    """A Markdown image with its caption, for the figure ``key`` of stage ``sid`` (it must exist)."""
    if key not in figures:
        raise NnlabValueError(f"report: stage {sid} has no figure {key!r}; it has {sorted(figures)}")
    return f"![{caption}]({figures_rel}/stage{sid}/{figures[key]})\n\n*{caption}*\n"


FILTERS = {"g": g, "pct": pct, "points": points, "sci": sci, "upto": upto, "fixed": fixed, "num": num,
           "and_join": and_join}
