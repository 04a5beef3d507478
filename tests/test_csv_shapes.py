"""CSV files as people really write them: very long cells, short rows, trailing commas, odd encodings."""

import csv

import pytest

from nnlab.data.tabular import CSVError, read_csv, read_csv_table


def _rows(n, fmt):
    return "".join(fmt(i) for i in range(n))


def test_a_cell_longer_than_the_csv_modules_limit_is_read(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,note,y\n" + _rows(30, lambda i: f"{i % 5},{'x' * 200_000 if i == 0 else 'short'},{i % 2}\n"))
    frame = read_csv(path)
    assert len(frame.loc[0, "note"]) == 200_000
    assert csv.field_size_limit() == 131072  # the module's limit is restored afterwards


def test_a_long_stray_cell_is_shown_cut_in_the_message(tmp_path):
    path = tmp_path / "stray.csv"
    path.write_text("a,b,y\n1," + "x" * 300_000 + ",0\n" + _rows(40, lambda i: f"{i},{i % 3},{i % 2}\n"))
    with pytest.raises(CSVError, match=r"'x{40}\.\.\. \(300,000 characters\)' in column 'b', line 2") as info:
        read_csv_table(path, "y")
    assert len(str(info.value)) < 300
