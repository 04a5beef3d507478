"""CSV files as people really write them: very long cells, short rows, trailing commas, odd encodings."""

import csv
import gzip

import numpy as np
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


def test_a_sorted_integer_feature_is_kept_and_only_a_true_row_number_dropped(tmp_path):
    path = tmp_path / "years.csv"
    path.write_text("row,year,b,y\n" + _rows(80, lambda i: f"{i + 1},{1950 + i},{i % 7},{int(1950 + i > 1990)}\n"))
    table = read_csv_table(path, "y")
    assert "year" in table.features_used and "b" in table.features_used
    assert table.columns_dropped["row"].startswith("identifier-like: it numbers the rows (1, 2, ..., 80")


def test_currency_thousands_and_percent_are_read_as_numbers_with_a_note(tmp_path):
    path = tmp_path / "money.csv"
    path.write_text("price,share,y\n" + _rows(30, lambda i: f'"${i * 1000 + 0.5:,}",{i - 10}%,{i % 2}\n'))
    table = read_csv_table(path, "y")
    assert table.numeric == ["price", "share"]
    np.testing.assert_array_equal(table.X["price"], np.arange(30) * 1000 + 0.5)
    np.testing.assert_array_equal(table.X["share"], np.arange(30) - 10.0)
    assert any("'$0.5' -> 0.5" in note for note in table.notes) and any("'-10%' -> -10" in n for n in table.notes)


def test_a_latin1_file_is_told_where_and_how_to_re_save(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,name,y\n1,plain,0\n2,caf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(CSVError, match=r"not a UTF-8 text file: byte 0xe9 at byte offset 24 \(line 3\); re-save it "
                                       r"as 'CSV UTF-8'"):
        read_csv(path)


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_text("a,y\n1,0\n", encoding="utf-16")
    with pytest.raises(CSVError, match="a UTF-16 text file; nnlab reads UTF-8: re-save it as 'CSV UTF-8'"):
        read_csv(path)


def test_a_folder_or_a_device_is_named_not_called_missing(tmp_path):
    with pytest.raises(CSVError, match="is a folder, not a CSV file"):
        read_csv(tmp_path)
    with pytest.raises(CSVError, match="/dev/null is not a regular file, not a CSV file"):
        read_csv("/dev/null")


def test_rows_that_omit_trailing_empty_fields_are_padded_with_a_note(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a;b;c;y\n" + _rows(30, lambda i: f"{i % 4};{i % 3};{i % 5};{i % 2}\n" if i % 3 else f"{i % 4}\n"))
    frame = read_csv(path)
    assert frame.attrs["separator"] == ";" and frame.loc[0, ["b", "c", "y"]].isna().all()
    assert frame.attrs["read_notes"] == ["10 line(s) have fewer fields than the header (line 2, 5, 8, ...); the "
                                         "missing trailing fields are read as missing values"]


def test_a_trailing_separator_on_every_line_is_dropped_but_a_value_under_no_name_is_not(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("a,b,y,\n" + _rows(30, lambda i: f"{i % 4},{i % 3},{i % 2},\n"))
    assert list(read_csv(path).columns) == ["a", "b", "y"]
    path.write_text("a,b,y,\n" + _rows(30, lambda i: f"{i % 4},{i % 3},{i % 2},{'x' if i == 7 else ''}\n"))
    with pytest.raises(CSVError, match="the last column has no name in the header but line 9 holds 'x'"):
        read_csv(path)


def test_a_comment_line_inside_the_table_is_named(tmp_path):
    path = tmp_path / "comment.csv"
    path.write_text("a,b,y\n1,2,0\n# a note halfway\n3,4,1\n")
    with pytest.raises(CSVError, match=r"line 3 has 1 fields, the header has 3 \(a comment line inside the table"):
        read_csv(path)


def test_hints_fit_the_case(tmp_path):
    path = tmp_path / "empty_col.csv"
    path.write_text("a,c,y\n" + _rows(30, lambda i: f"{i % 4},,{i % 2}\n"))
    assert read_csv_table(path, "y").notes == ["dropped column(s) 'c' (no values)"]
    path.write_text("a,b,y\n1,oops,0\n" + _rows(30, lambda i: f"{i % 4},{i % 3},{i % 2}\n"))
    with pytest.raises(CSVError, match="--categorical none makes text an error; without it text columns are one-hot"):
        read_csv_table(path, "y", categorical="none")


def test_a_gzip_compressed_csv_named_gz_is_read_as_the_plain_file_is(tmp_path):
    text = "a;b;y\n" + _rows(30, lambda i: f"{i},5;{i % 4};{i % 2}\n")
    (tmp_path / "plain.csv").write_text(text)
    with gzip.open(tmp_path / "packed.csv.gz", "wt") as fh:
        fh.write(text)
    plain, packed = read_csv_table(tmp_path / "plain.csv", "y"), read_csv_table(tmp_path / "packed.csv.gz", "y")
    assert packed.X.equals(plain.X) and packed.decimal_comma == ["a", "b"] and packed.X["a"].iloc[3] == 3.5


def test_compressed_bytes_under_a_plain_name_are_named_not_called_a_bad_encoding(tmp_path):
    (tmp_path / "packed.csv").write_bytes(gzip.compress(b"a,y\n1,0\n"))
    with pytest.raises(CSVError, match=r"packed\.csv: the file is gzip-compressed; name it with a \.gz ending"):
        read_csv(tmp_path / "packed.csv")
    (tmp_path / "zipped.csv").write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(CSVError, match=r"zipped\.csv: the file is zip-compressed; decompress it first"):
        read_csv(tmp_path / "zipped.csv")
    (tmp_path / "plain.csv.gz").write_text("a,y\n1,0\n")
    with pytest.raises(CSVError, match=r"plain\.csv\.gz: the name ends in \.gz but the file is not gzip-compressed"):
        read_csv(tmp_path / "plain.csv.gz")
    packed = gzip.compress(("a,y\n" + _rows(5000, lambda i: f"{i * 7919 % 10007},{i % 2}\n")).encode())
    (tmp_path / "cut.csv.gz").write_bytes(packed[:200])
    with pytest.raises(CSVError, match=r"cut\.csv\.gz: a damaged gzip file"):
        read_csv(tmp_path / "cut.csv.gz")


def test_standard_input_is_said_to_be_unsupported_not_missing():
    with pytest.raises(CSVError, match=r"reading a CSV from standard input \('-'\) is not supported"):
        read_csv("-")
