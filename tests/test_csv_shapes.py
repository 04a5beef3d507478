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
    with pytest.raises(CSVError, match="the last column has no name in the header but line 9 holds 'x' there"):
        read_csv(path)


def test_several_trailing_separators_as_excel_writes_them_are_dropped_with_a_note(tmp_path):
    """'a,b,y,,,' on every line (columns once formatted, then emptied) was refused as 'a blank name'."""
    path = tmp_path / "excel.csv"
    path.write_text("a,b,y,,,\n" + _rows(30, lambda i: f"{i % 4},{i % 3},{i % 2},,,\n"))
    frame = read_csv(path)
    assert list(frame.columns) == ["a", "b", "y"] and frame["a"].tolist()[:3] == [0, 1, 2]
    assert "dropped the 3 unnamed last columns, empty on every line (each line ends with 3 separators)" \
        in frame.attrs["read_notes"]
    path.write_text("a,b,y,,\n" + _rows(30, lambda i: f"{i % 4},{i % 3},{i % 2},{'x' if i == 7 else ''},\n"))
    with pytest.raises(CSVError, match="the last 2 columns have no name in the header but line 9 holds 'x' there"):
        read_csv(path)
    path.write_text(",,\n" + _rows(30, lambda i: ",,\n"))  # nothing named at all: still refused
    with pytest.raises(CSVError):
        read_csv(path)


def test_a_comment_line_inside_the_table_is_named(tmp_path):
    path = tmp_path / "comment.csv"
    path.write_text("a,b,y\n1,2,0\n# a note halfway\n3,4,1\n")
    with pytest.raises(CSVError, match=r"line 3 has 1 fields, the header has 3 \(a comment line inside the table"):
        read_csv(path)


def test_hints_fit_the_case(tmp_path):
    path = tmp_path / "empty_col.csv"
    path.write_text("a,c,y\n" + _rows(30, lambda i: f"{i % 4}.{i},,{i % 2}\n"))
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


# ---- careless-user findings: numbers as exports write them, totals rows, id targets, duplicate rows -----------------
def test_a_column_mixing_percentages_and_plain_numbers_is_refused_by_name(tmp_path):
    path = tmp_path / "pctmix.csv"
    path.write_text("a,smooth,y\n" + _rows(40, lambda i: f"{i},{f'{8 + i / 10:.2f}%' if i % 3 else f'0.0{i + 10}'},"
                                                       f"{i % 2}\n"))
    with pytest.raises(CSVError, match=r"^column 'smooth' mixes percentages and plain numbers: '8\.10%' \(line 3\) in "
                                       r"26 row\(s\), '0\.010' \(line 2\) without '%' in 14 row\(s\)"):
        read_csv_table(path, "y")
    zeros = tmp_path / "zeros.csv"  # a plain 0 is 0 % as well: no mix
    zeros.write_text("a,share,y\n" + _rows(40, lambda i: f"{i},{'0' if i % 4 == 0 else f'{i}%'},{i % 2}\n"))
    expected = np.where(np.arange(40) % 4 == 0, 0, np.arange(40))
    np.testing.assert_array_equal(read_csv_table(zeros, "y").X["share"], expected)


def test_a_trailing_minus_is_read_as_a_negative_number_with_a_note_never_as_category_codes(tmp_path):
    def sap(v, fmt):
        return f"{abs(v):{fmt}}-" if v < 0 else f"{v:{fmt}}"
    signs = np.resize([1, -1, -1, 1, -1], 60) * (np.arange(60) % 4 + 1)  # whole numbers, 4 levels each side of 0
    path = tmp_path / "sap.csv"
    path.write_text("level,bmi,y\n" + _rows(60, lambda i: f"{sap(signs[i], 'd')},{sap(signs[i] * 10.25 + i, '.2f')},"
                                                       f"{sap(i * 1.5 - 30, '.1f')}\n"))
    table = read_csv_table(path, "y")
    assert table.numeric == ["level", "bmi"] and table.categorical == [] and table.task == "regression"
    np.testing.assert_array_equal(table.X["level"], signs)
    np.testing.assert_allclose(table.X["bmi"], signs * 10.25 + np.arange(60))
    np.testing.assert_allclose(table.y, np.arange(60) * 1.5 - 30)
    assert "column(s) 'level' ('2-' -> -2, 36 cell(s)), 'bmi' ('19.50-' -> -19.5, 15 cell(s)) read as negative " \
           "numbers (the minus sign last, as SAP writes it)" in table.notes
    assert "target 'y' ('30.0-' -> -30, 20 cell(s)) read as negative numbers (the minus sign last, as SAP writes it)" \
        in table.notes
    comma = tmp_path / "sap_eu.csv"  # with decimal commas and dots grouping thousands
    comma.write_text("a;y\n" + _rows(30, lambda i: f"{'1.051,47-' if i % 2 else '3,5'};{i % 2}\n"))
    np.testing.assert_array_equal(read_csv_table(comma, "y").X["a"], np.resize([3.5, -1051.47], 30))


def test_spaces_grouping_thousands_are_read_with_a_note_and_misplaced_ones_never_offered_as_missing(tmp_path):
    spaces = [" ", "\u00a0", "\u202f"]
    path = tmp_path / "fr.csv"
    path.write_text("proline;alcohol;y\n" + _rows(30, lambda i: f"{1 + i // 10}{spaces[i % 3]}{65 + i:03d};"
                                                              f"{f'-1{spaces[i % 3]}0{i:02d},5' if i % 2 else '13,2'};"
                                                              f"{i % 2}\n"), encoding="utf-8")
    table = read_csv_table(path, "y")
    assert table.numeric == ["proline", "alcohol"]
    np.testing.assert_array_equal(table.X["proline"], 1000 * (1 + np.arange(30) // 10) + 65 + np.arange(30))
    np.testing.assert_array_equal(table.X["alcohol"], np.where(np.arange(30) % 2, -1000.5 - np.arange(30), 13.2))
    assert "column(s) 'proline' ('1 065' -> 1065, 30 cell(s)), 'alcohol' ('-1\u00a0001,5' -> -1001.5, 15 cell(s)) " \
           "read with spaces (or no-break spaces) grouping thousands" in table.notes
    bad = tmp_path / "bad.csv"  # groups not of 3 digits: no number, and never a word to blank
    bad.write_text("a;y\n" + _rows(30, lambda i: f"{'10 65' if i % 4 == 0 else f'{1000 + i}'};{i % 2}\n"))
    with pytest.raises(CSVError, match=r"non-numeric value '10 65' in column 'a', line 2 .*: '10 65' in 8 row\(s\); "
                                       r"'10 65' reads as a number once its spaces are removed, but a space may only "
                                       r"group thousands in groups of 3 digits \('1 065'\); correct them$"):
        read_csv_table(bad, "y")


def test_a_totals_row_at_the_bottom_is_dropped_with_a_note_naming_its_line(tmp_path):
    rng = np.random.default_rng(0)
    x, z = rng.uniform(1, 9, size=(2, 30)).round(3)
    target = (3 * x + z).round(3)
    rows = [f"{a},{b},{t}" for a, b, t in zip(x, z, target)]
    path = tmp_path / "sums.csv"  # regression: the last line is the column sums, no word
    path.write_text("x,z,y\n" + "\n".join(rows + [f"{x.sum():.3f},{z.sum():.3f},{target.sum():.3f}"]) + "\n")
    table = read_csv_table(path, "y")
    assert len(table.y) == 30 and table.y.max() == target.max()
    assert "dropped line 32, a totals row (its numbers are the sums of the rows above in 3 of 3 numeric columns)" \
        in table.notes
    labelled = tmp_path / "labelled.csv"  # classification: the label cell says Total, the numbers quoted with commas
    lines = [f'"{a * 1000:,.1f}",{b},{"ab"[i % 2]}\n' for i, (a, b) in enumerate(zip(x, z))]
    labelled.write_text("x,z,label\n" + "".join(lines) + f'"{x.sum() * 1000:,.1f}",{z.sum():.3f},Total\n')
    table = read_csv_table(labelled, "label")
    assert table.classes == ["a", "b"] and len(table.y) == 30
    assert "dropped line 32, a totals row (its first text cell is 'Total')" in table.notes
    german = tmp_path / "summe.csv"  # a word alone says it, numbers partly blank, decimal commas
    german.write_text("name;x;y\n" + "".join(f"r{i};{a:.2f};{i % 2}\n".replace(".", ",") for i, a in enumerate(x))
                      + "SUMME;;15\n")
    assert "dropped line 32, a totals row (its first text cell is 'SUMME')" in read_csv_table(german, "y").notes
    plain = tmp_path / "plain.csv"  # a last row summing one column only is an ordinary row
    plain.write_text("x,z,y\n" + "\n".join(rows + [f"{x.sum():.3f},1.5,2.5"]) + "\n")
    assert len(read_csv_table(plain, "y").y) == 31


def test_an_identifier_like_target_gets_a_note_by_the_rule_that_drops_identifier_columns(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("patient_id,age,y\n" + _rows(40, lambda i: f"{100001 + i},{20 + i * 7 % 50},{i * 3 % 7}.5\n"))
    table = read_csv_table(path, "patient_id")
    assert table.task == "regression" and "age" in table.numeric
    assert "the target 'patient_id' looks like an identifier (40 distinct integers in file order, one per row, in a " \
           "column named like an identifier): its values are labels of rows, not a quantity" in table.notes
    rows = read_csv_table(path, "y")  # the ids as a feature: dropped by the same rule; a quantity target: no note
    assert rows.columns_dropped["patient_id"].startswith("identifier-like: 40 distinct integers in file order")
    assert not any("looks like an identifier" in note for note in rows.notes)
    age = read_csv_table(path, "age", task="regression")
    assert not any("looks like an identifier" in note for note in age.notes)


def test_duplicate_rows_are_counted_in_a_note_and_copies_across_the_split_are_said(tmp_path):
    from nnlab.data.tabular import duplicate_split_note  # (here: the file's other tests run on a tree without it)

    lines = [f"{i % 7},{i * 0.5},{'ab'[i % 2]}" for i in range(30)]
    copies = [lines[3], lines[3], lines[10], "4,,a", "4,,a"]  # a missing cell is alike in both copies
    path = tmp_path / "dups.csv"
    path.write_text("x,z,y\n" + "\n".join(lines + copies) + "\n")
    table = read_csv_table(path, "y")
    assert table.duplicate_rows == 4 and len(table.y) == 35
    assert "4 row(s) repeat an earlier row in every column, the target too (line 32 repeats line 5): kept, each " \
           "copy weighs as one more row" in table.notes
    # rows 30, 31, 32 copy pool rows; 34 copies 33, a test row
    note = duplicate_split_note(table, np.arange(30), np.arange(30, 35))
    assert note == ("the file repeats 4 row(s) and the train/test split is random, so copies may fall on both sides: "
                    "3 of the 5 test rows have an exact copy among the other rows, which makes the test score look "
                    "better than it would on new rows")
    assert "2 of the 2 test rows" in duplicate_split_note(table, np.arange(3, 30), np.array([30, 31]))
    assert duplicate_split_note(table, np.arange(4, 30), np.array([0, 1])).endswith(
        "both sides: here none of the 2 test rows has an exact copy among the other rows")
    unique = tmp_path / "unique.csv"  # the same rows once each: no note, here or at the split
    unique.write_text("x,z,y\n" + "\n".join(lines) + "\n")
    once = read_csv_table(unique, "y")
    assert once.duplicate_rows == 0 and not any("repeat" in n for n in once.notes)
    assert duplicate_split_note(once, np.arange(20), np.arange(20, 30)) is None
