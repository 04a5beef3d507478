"""Stage 7's CSV reading of formatted numbers, words in number columns, spelling variants and saved pandas indexes:
what spreadsheets and pandas write, read as written or refused by name, never misread silently."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from nnlab.cli import build_parser, main
from nnlab.data.tabular import CSVError, read_csv, read_csv_table
from nnlab.errors import NnlabValueError
from nnlab.predict import predict_csv
from nnlab.stages import stage7


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _eu_rows(n=40, seed=0, words=()):
    """A ';'-separated table with decimal commas (one column with '.' thousands groups) and a class target."""
    rng = np.random.default_rng(seed)
    lines = ["alcohol;ash;area;label"]
    for i in range(n):
        a, b = rng.normal(size=2)
        area = f"{1000 + 400 * a:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")  # '1.234,56'
        ash = words[i % len(words)] if words and i % 5 == 0 else f"{2 + b:.2f}".replace(".", ",")
        lines.append(f"{13 + a:.2f}".replace(".", ",") + f";{ash};{area};{'hi' if a + b > 0 else 'lo'}")
    return "\n".join(lines) + "\n"


# ---- 1, 2: decimal commas and thousands separators ---------------------------------------------------------------
def test_a_decimal_comma_file_is_read_as_decimals_and_said(tmp_path):
    table = read_csv_table(_write(tmp_path, _eu_rows()), "label")
    assert table.numeric == ["alcohol", "ash", "area"] and table.categorical == [] and table.columns_dropped == {}
    first = _eu_rows().splitlines()[1].split(";")
    assert table.X["alcohol"].iloc[0] == pytest.approx(float(first[0].replace(",", ".")))
    assert table.X["area"].iloc[0] == pytest.approx(float(first[2].replace(".", "").replace(",", ".")))
    assert table.decimal_comma == ["alcohol", "ash", "area"]
    note = next(n for n in table.notes if "decimal comma" in n)
    assert "'alcohol'" in note and f"('{first[0]}' -> {float(first[0].replace(',', '.')):g})" in note


def test_a_comma_is_a_thousands_separator_only_in_well_formed_groups():
    from nnlab.data.tabular import number_cells

    cells = pd.Series(["0,280", "1,234", "-1,234,567.5", "1065,000", "12,34", "$2,000", "(3,000.5)", "7"])
    read = number_cells(cells)
    expected = [np.nan, 1234, -1234567.5, np.nan, np.nan, 2000, -3000.5, 7]
    np.testing.assert_array_equal(read.to_numpy(), np.array(expected, dtype=float))
    comma = number_cells(pd.Series(["0,280", "1.001,5", "-7,9e-05", "1,2,3", "1.5"]), decimal_comma=True)
    np.testing.assert_array_equal(comma.to_numpy(), [0.28, 1001.5, -7.9e-05, np.nan, np.nan])


def test_a_comma_file_with_zero_comma_cells_is_not_read_as_thousands(tmp_path):
    rows = "x,z,y\n" + "".join(f'"0,{100 + 7 * i}",{i % 3},{i % 2}\n' for i in range(30))
    with pytest.raises(CSVError, match=r"column 'x'.*'0,100' in 1 row\(s\).*decimal commas in a comma-separated file"):
        read_csv_table(_write(tmp_path, rows), "y")


def test_a_comma_that_could_group_thousands_or_mark_decimals_is_refused_by_name(tmp_path):
    rows = "price;noise;y\n" + "".join(f"{'10,725' if i % 2 == 0 else '19'};{i % 7};{i % 2}\n" for i in range(40))
    with pytest.raises(CSVError, match=r"column 'price': '10,725' \(line 2\) reads as 10725 with a thousands comma "
                                       r"or 10.725 with a decimal comma"):
        read_csv_table(_write(tmp_path, rows), "y")


def test_another_column_of_the_file_decides_an_ambiguous_comma(tmp_path):
    rows = "big;small;y\n" + "".join(f"{10 + i},{i % 10}00;0,{200 + i};{i % 2}\n" for i in range(30))
    table = read_csv_table(_write(tmp_path, rows), "y")
    assert table.X["big"].iloc[3] == 13.3 and table.X["small"].iloc[3] == 0.203
    assert sorted(table.decimal_comma) == ["big", "small"]
    assert "column(s) 'big' read either way, so with a decimal comma as the file's other columns ('small' holds " \
           "'0,200')" in table.notes


def test_a_column_mixing_decimal_commas_and_points_is_refused(tmp_path):
    rows = "x;z;y\n" + "".join(f"{'0,5' if i % 3 == 0 else '0.25'};{i};{i % 2}\n" for i in range(30))
    with pytest.raises(CSVError, match=r"column 'x' mixes number formats: '0.25' \(line 3\).*'0,5' \(line 2\)"):
        read_csv_table(_write(tmp_path, rows), "y")


# ---- 3: words in a column of numbers, --na-values -------------------------------------------------------------
def _with_words(tmp_path, share=5):
    rng = np.random.default_rng(3)
    lines = ["a,b,y"]
    for i in range(60):
        a = rng.normal()
        b = ["unknown", "n.a."][i % 2] if i % share == 0 else f"{rng.normal():.3f}"
        lines.append(f"{a:.3f},{b},{int(a > 0)}")
    return _write(tmp_path, "\n".join(lines) + "\n")


def test_words_in_a_column_of_numbers_are_named_with_their_counts(tmp_path):
    with pytest.raises(CSVError) as info:
        read_csv_table(_with_words(tmp_path), "y")
    text = str(info.value)
    assert "column 'b'" in text and "'unknown' in 6 row(s)" in text and "'n.a.' in 6 row(s)" in text
    assert "--na-values 'unknown,n.a.'" in text


def test_a_few_whole_number_codes_beside_a_word_stay_categories(tmp_path):
    """'0' to '3' and '4+' (number of children, say) are category codes: one-hot encoded as before, not refused."""
    rng = np.random.default_rng(4)
    kids = rng.integers(0, 6, 80)
    lines = ["a,kids,y"] + [f"{rng.normal():.3f},{'4+' if k >= 4 else k},{int(k > 2)}" for k in kids]
    table = read_csv_table(_write(tmp_path, "\n".join(lines) + "\n"), "y")
    assert "kids" in table.features_used and not pd.api.types.is_numeric_dtype(table.X["kids"])
    assert sorted(table.X["kids"].dropna().unique()) == ["0", "1", "2", "3", "4+"]
    # decimals beside a word are measurements: still refused (test_words_in_a_column_of_numbers_...)


def test_na_values_reads_the_words_as_missing_and_counts_them(tmp_path):
    table = read_csv_table(_with_words(tmp_path), "y", na_values=["unknown", "n.a."])
    assert table.numeric == ["a", "b"] and int(table.X["b"].isna().sum()) == 12
    assert any("12 cell(s) read as missing" in n and "'b' (12)" in n for n in table.notes)


def _fit_and_save(tmp_path, table):
    """``(pipeline, checkpoint path)``: a small classifier trained on ``table`` and saved as Stage 7 saves it."""
    config = stage7.Config().quick()
    pipe = stage7.make_pipeline(table, config, hidden_layer_sizes=(8,), batch_size=16)
    pipe.fit(table.X, table.y)
    return pipe, pipe.named_steps["mlp"].network_.save(tmp_path / "m.npz",
                                                       extra=stage7.checkpoint_extra(table, pipe, config, table.X))


def _saved_model_predicts_its_training_file(tmp_path, table, path):
    """Train a small classifier on ``table``, save it, and check that predict on ``path`` gives the pipeline's
    probabilities and no warning; returns the checkpoint's path."""
    pipe, model = _fit_and_save(tmp_path, table)
    text, notes = predict_csv(model, path)
    got = np.array([[float(v) for v in line.split(",")[2:-1]] for line in text.splitlines()[1:]])  # (not the flag)
    np.testing.assert_allclose(got, pipe.predict_proba(table.X), atol=5e-7)  # (written with 6 decimals)
    gaps = int(table.X[table.numeric].isna().to_numpy().sum())  # filled as training filled them, and said so
    assert [n.split(":")[0] for n in notes] == ([f"{gaps} missing number(s) filled with their column's training "
                                                 "value, as training did"] if gaps else [])
    return model


def test_checkpoint_reads_new_files_as_training_read_them(tmp_path):
    path = _write(tmp_path, _eu_rows(60, words=("unknown",)))
    table = read_csv_table(path, "label", na_values=["unknown"])
    assert int(table.X["ash"].isna().sum()) == 12
    _saved_model_predicts_its_training_file(tmp_path, table, path)


# ---- 5: a formatted target ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell, value", [('"{:,}"', 151000.0), ("{}.5%", 151.5), ('"${:,}.25"', 151000.25)])
def test_a_formatted_numeric_target_is_read_as_numbers(tmp_path, cell, value):
    number = 151 if "%" in cell else 151000
    rows = "x,y\n" + "".join(f"{i / 7:.3f},{cell.format(number + 13 * i)}\n" for i in range(40))
    table = read_csv_table(_write(tmp_path, rows), "y")
    assert table.task == "regression" and table.y[0] == value and table.y[1] == value + 13
    assert any(n.startswith("target 'y' read as numbers") for n in table.notes)


# ---- 6: spaces and case ---------------------------------------------------------------------------------------
def test_target_labels_differing_only_in_case_are_refused(tmp_path):
    rows = "x,y\n" + "".join(f"{i},{['Yes', 'no', 'No '][i % 3]}\n" for i in range(30))
    with pytest.raises(CSVError, match=r"target 'y' holds labels that differ only in case: 'No' \(10 rows\) / 'no' "
                                       r"\(10 rows\)"):
        read_csv_table(_write(tmp_path, rows), "y")


def test_spaces_around_text_and_case_variants_in_features_are_said(tmp_path):
    rows = "x,region,y\n" + "".join(f"{i},{['south', 'South ', 'north'][i % 3]},{['a', 'b '][i % 2]}\n"
                                    for i in range(30))
    table = read_csv_table(_write(tmp_path, rows), "y")
    assert sorted(set(table.y)) == ["a", "b"] and sorted(set(table.X["region"])) == ["South", "north", "south"]
    assert "removed spaces around 25 text cell(s) in column(s) 'region' (10), 'y' (15)" in table.notes
    assert any("'region' holds values that differ only in case" in n and "'South' / 'south'" in n
               for n in table.notes)


# ---- 10: a saved pandas index, repeated names -------------------------------------------------------------------
def test_a_saved_pandas_index_is_dropped_with_a_note(tmp_path):
    frame = pd.DataFrame({"a": np.arange(30) % 4, "y": np.arange(30) % 2})
    frame.to_csv(tmp_path / "plain.csv")
    frame.sample(frac=1.0, random_state=0).to_csv(tmp_path / "shuffled.csv")
    for name in ("plain.csv", "shuffled.csv"):
        read = read_csv(tmp_path / name)
        assert list(read.columns) == ["a", "y"]
        assert read.attrs["read_notes"] == ["dropped the unnamed first column: a saved pandas index (the integers 0 "
                                            "to 29, one per row)"]


def test_an_unnamed_first_column_that_is_no_index_is_refused_by_name(tmp_path):
    rows = ",a,y\n" + "".join(f"{i * i},{i % 4},{i % 2}\n" for i in range(30))
    with pytest.raises(CSVError, match=r"the first column has no name in the header \(its cells start 0, 1, 4\).*"
                                       r"index=False"):
        read_csv(_write(tmp_path, rows))


def test_repeated_header_names_are_named(tmp_path):
    with pytest.raises(CSVError, match=r"\('x', 'y' repeated\)"):
        read_csv(_write(tmp_path, "x,x,y,y,target\n1,2,3,4,5\n"))


# ---- 11: the record of a --csv run, and --dataset with --csv ----------------------------------------------------
def test_run_all_takes_dataset_for_stage_5_beside_csv_for_stage_7(tmp_path):
    """In `run all`, --dataset names stage 5's data and --csv stage 7's: both together are not a contradiction."""
    from nnlab.cli import _check_inputs, _configure
    from nnlab.stages import STAGES

    path = _write(tmp_path, "a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(40)) + "\n")
    args = build_parser().parse_args(["run", "all", "--csv", str(path), "--target", "y", "--dataset", "mnist"])
    configs = {sid: _configure(STAGES[sid], args, True, explicit=False) for sid in STAGES}
    _check_inputs(args, configs)  # no UsageError
    assert configs["5"].dataset == "mnist"


def test_dataset_with_csv_is_refused(tmp_path, capsys):
    path = _write(tmp_path, "a,y\n1,0\n2,1\n")
    code = main(["run", "7", "--csv", str(path), "--target", "y", "--dataset", "wine", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--dataset wine and --csv" in err and err.count("\n") == 1


def test_na_values_without_csv_is_refused(capsys):
    code = main(["run", "7", "--na-values", "unknown", "--out", "/nonexistent/never"])
    err = capsys.readouterr().err
    assert code == 2 and "--na-values applies to --csv files" in err and err.count("\n") == 1


def test_a_csv_run_records_its_file_and_reads_na_values(tmp_path, capsys):
    path = _write(tmp_path, _eu_rows(60, words=("n.a.",)), "export.csv")
    out = tmp_path / "out"
    code = main(["run", "7", "--csv", str(path), "--target", "label", "--na-values", "n.a.", "--quick",
                 "--no-progress", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "--na-values n.a.: 12 cell(s) read as missing" in stdout
    record = json.loads((out / "stage7/metrics.json").read_text())
    assert record["config"]["dataset"] == "export.csv" and record["config"]["na_values"] == ["n.a."]
    assert record["metrics"]["features_used"] == ["alcohol", "ash", "area"]


# ---- dots grouping thousands in a decimal-comma file; the --decimal option --------------------------------------
def _dotted_rows(n=60, seed=5, odd_cell=None):
    """A ';' file whose column 'a' holds decimal commas and whose column 'b' pandas parses as floats ('1.500')."""
    rng = np.random.default_rng(seed)
    lines = ["a;b;y"]
    for i in range(n):
        a, b = rng.normal(), int(rng.integers(1, 40)) * 250
        cell = f"{b // 1000}.{b % 1000:03d}" if b >= 1000 else f"{b}"
        cell = odd_cell if odd_cell and i == 7 else cell
        lines.append(f"{a:.2f}".replace(".", ",") + f";{cell};{int(a + b / 5000 > 1)}")
    return "\n".join(lines) + "\n"


def test_a_float_column_of_a_decimal_comma_file_reads_its_dots_as_thousands(tmp_path):
    rows = [("14,23", "1.500"), ("3,5", "2.250"), ("0,28", "12.000"), ("7,1", "250"), ("1,9", "3.000"),
            ("2,2", "4.750")]  # review 6's reproducer, with a whole-number target
    path = _write(tmp_path, "a;b;y\n" + "".join(f"{a};{b};{i}\n" for i, (a, b) in enumerate(rows)))
    table = read_csv_table(path, "y", task="regression")
    assert table.X["b"].tolist() == [1500, 2250, 12000, 250, 3000, 4750]
    assert table.decimal_comma == ["a", "b"]
    assert "column(s) 'b' ('1.500' -> 1500) read with a decimal comma and dots grouping thousands, as the file's " \
           "other columns ('a' holds '14,23')" in table.notes


def test_a_decimal_point_in_a_float_column_of_a_decimal_comma_file_is_refused_by_name(tmp_path):
    with pytest.raises(CSVError, match=r"^column 'b': '1\.5' \(line 9\) has a decimal point, but this file writes "
                                       r"decimal commas \('a' holds '[-0-9]+,[0-9]+'\)"):
        read_csv_table(_write(tmp_path, _dotted_rows(odd_cell="1.5")), "y")


@pytest.mark.parametrize("cell", ["0.280", "-0.560", "00.500"])
def test_a_dot_after_a_leading_zero_is_no_thousands_group_in_a_decimal_comma_file(tmp_path, cell):
    """'0.280' was read as 280 (a group of three after a lone 0), while '0,280' is never read as thousands."""
    with pytest.raises(CSVError, match=rf"^column 'b': '{re.escape(cell)}' \(line 9\) has a decimal point"):
        read_csv_table(_write(tmp_path, _dotted_rows(odd_cell=cell)), "y")


def test_predict_reads_dots_as_thousands_as_training_did(tmp_path):
    path = _write(tmp_path, _dotted_rows())
    table = read_csv_table(path, "y")
    assert table.X["b"].min() >= 250 and table.X["b"].max() > 1000  # (not pandas' 1.5 for '1.500')
    model = _saved_model_predicts_its_training_file(tmp_path, table, path)
    odd = _write(tmp_path, _dotted_rows(odd_cell="1.5"), "new.csv")
    with pytest.raises(CSVError, match=r"non-numeric value '1\.5' in column 'b', line 9 \(read with a decimal comma"):
        predict_csv(model, odd)


def _us_thousands_tsv(tmp_path):
    """Tab-separated, US thousands commas, and no cell that tells a thousands comma from a decimal one."""
    rows = "".join(f'"{1 + i % 9},{200 + i:03d}"\t{i % 5}\t{(i * 7) % 11}\n' for i in range(40))
    return _write(tmp_path, "a\tb\ty\n" + rows, "us.tsv")


def test_an_undecided_comma_is_refused_naming_the_decimal_option_which_decides_it(tmp_path):
    path = _us_thousands_tsv(tmp_path)
    with pytest.raises(CSVError, match=r"column 'a': '1,200' \(line 2\) reads as 1200 .* no cell of the file decides "
                                       r"which; pass --decimal point or --decimal comma"):
        read_csv_table(path, "y")
    assert read_csv_table(path, "y", decimal="point").X["a"].iloc[:2].tolist() == [1200, 2201]
    comma = read_csv_table(path, "y", decimal="comma")
    assert comma.X["a"].iloc[:2].tolist() == [1.2, 2.201] and comma.decimal == "comma"
    assert comma.decimal_comma == ["a", "b"]  # ('b' holds whole numbers: recorded too, for predict)


def test_the_decimal_option_admits_its_convention_only_and_refuses_other_values(tmp_path):
    quoted = _write(tmp_path, "a,y\n" + "".join(f'"{i},5",{i % 2}\n' for i in range(30)))
    assert read_csv_table(quoted, "y", decimal="comma").X["a"].iloc[:3].tolist() == [0.5, 1.5, 2.5]
    floats = _write(tmp_path, "a,y\n" + "".join(f"{i}.5,{i % 2}\n" for i in range(30)), "floats.csv")
    with pytest.raises(CSVError, match=r"column 'a': '0\.5' \(line 2\) has a decimal point.*\(--decimal comma\)"):
        read_csv_table(floats, "y", decimal="comma")
    for bad in ("dot", ",", True):
        with pytest.raises(NnlabValueError, match=r"read_csv_table: decimal must be 'point', 'comma' or None"):
            read_csv_table(floats, "y", decimal=bad)


def test_decimal_point_given_for_a_file_of_decimal_commas_says_so(tmp_path):
    path = _write(tmp_path, "a;b;y\n" + "".join(f"{i},5;{i % 3};{i % 2}\n" for i in range(30)))
    with pytest.raises(CSVError, match=r"^non-numeric value '0,5' in column 'a', line 2: '0,5' in 1 row\(s\).*decimal "
                                       r"commas, but the file was said to use decimal points \(--decimal point\): "
                                       r"give --decimal comma$"):
        read_csv_table(path, "y", decimal="point")


@pytest.mark.parametrize("trained_with", [None, "comma"])
@pytest.mark.parametrize("predicted_with", [None, "comma"])
def test_predict_reads_a_whole_number_column_of_a_decimal_comma_file_as_training_did(tmp_path, trained_with,
                                                                                    predicted_with):
    # review 7, item 1: 'price' holds only whole numbers in training (pandas: int64), yet the file writes decimal
    # commas, so '1.000' in a new file is 1000 (a dot groups thousands) and '1,5' is 1.5
    rows = "price;ratio;y\n" + "".join(f"{901 + 3 * i};0,{10 + i};{i % 2}\n" for i in range(40))
    path = _write(tmp_path, rows)
    table = read_csv_table(path, "y", decimal=trained_with)
    pipe, model = _fit_and_save(tmp_path, table)
    new = _write(tmp_path, "price;ratio\n1.000;0,5\n1000;0,5\n1,5;0,5\n", "new.csv")
    text, _ = predict_csv(model, new, decimal=predicted_with)
    got = np.array([[float(v) for v in line.split(",")[2:-1]] for line in text.splitlines()[1:]])
    expected = pipe.predict_proba(pd.DataFrame({"price": [1000.0, 1000.0, 1.5], "ratio": [0.5] * 3}))
    np.testing.assert_allclose(got, expected, atol=5e-7)


def test_prepare_table_reads_the_frame_it_is_given_not_the_file_behind_it(tmp_path):
    # review 7, item 3: a frame from read_csv, then changed by the caller, still pointed at its file
    from nnlab.data.tabular import prepare_table

    path = _write(tmp_path, "a;b;y\n-1.500;0,5;1\n-2.250;0,25;0\n3.000;1,5;1\n4.000;2,5;0\n")
    assert read_csv_table(path, "y").X["a"].tolist() == [-1500, -2250, 3000, 4000]  # (the file read: dots group)
    scaled = read_csv(path)
    scaled["a"] = [-15.0, -22.5, 30.0, 40.0]
    table = prepare_table(scaled, "y")
    assert table.X["a"].tolist() == [-15.0, -22.5, 30.0, 40.0]
    assert "float column(s) 'a' of a decimal-comma table kept as given, without their text" in " ".join(table.notes)
    added = read_csv(path)
    added["half"] = added["y"] / 2
    assert prepare_table(added, "y").X["half"].tolist() == [0.5, 0.0, 0.5, 0.0]


def test_a_word_in_a_float_column_of_a_decimal_comma_file_is_not_said_to_have_a_decimal_point(tmp_path):
    # review 7, item 10: 'inf' has no dot
    path = _write(tmp_path, "a;b;y\n1.500;0,5;1\ninf;0,25;0\n3.000;1,5;1\n")
    with pytest.raises(CSVError, match=r"^column 'a': 'inf' \(line 3\) is not a number as this file writes them, "
                                       r"with decimal commas \('b' holds '0,5'\)") as caught:
        read_csv_table(path, "y")
    assert "decimal point" not in str(caught.value)


def test_predict_with_decimal_point_on_comma_cells_names_the_option(tmp_path):
    # review 7, item 10: the refusal names the --decimal point that made the comma cell unreadable
    path = _write(tmp_path, _dotted_rows())
    model = _saved_model_predicts_its_training_file(tmp_path, read_csv_table(path, "y"), path)
    with pytest.raises(CSVError, match=r"^predict: non-numeric value '[-0-9]+,[0-9]+' in column 'a', line 2 \(read "
                                       r"with a decimal point, as --decimal point says\)$"):
        predict_csv(model, path, decimal="point")


def _dot_thousands_file(tmp_path, extra=""):
    """';'-separated whole numbers written with dots grouping thousands ('2.940' is 2940) and no cell that decides
    the convention; ``extra`` a column whose cells are added as they are (e.g. ordinary decimals)."""
    head = "ink;b" + (";c" if extra else "") + ";y\n"
    rows = "".join(f"{['940', '1.250', '2.940', '12.500'][i % 4]};{i % 5}" + (f";{extra}" if extra else "")
                   + f";{i % 2}\n" for i in range(40))
    return _write(tmp_path, head + rows)


def test_dots_that_may_group_thousands_are_refused_when_no_cell_decides_as_an_undecided_comma_is(tmp_path):
    path = _dot_thousands_file(tmp_path)
    with pytest.raises(CSVError, match=r"column 'ink': '1.250' \(line 3\) reads as 1.25 with a decimal point or 1250 "
                                       r"with a dot grouping thousands, and no cell of the file decides which; pass "
                                       r"--decimal point or --decimal comma"):
        read_csv_table(path, "y")
    assert read_csv_table(path, "y", decimal="comma").X["ink"].iloc[:4].tolist() == [940, 1250, 2940, 12500]
    assert read_csv_table(path, "y", decimal="point").X["ink"].iloc[:4].tolist() == [940, 1.25, 2.94, 12.5]
    # a cell with other than 3 decimals ('13.2') decides for the point; a decimal comma ('0,5') for the comma
    assert read_csv_table(_dot_thousands_file(tmp_path, "13.2"), "y").X["ink"].iloc[2] == 2.94
    assert read_csv_table(_dot_thousands_file(tmp_path, "0,5"), "y").X["ink"].iloc[2] == 2940
    # a comma-separated file has no decimal comma: nothing to decide
    comma_file = _write(tmp_path, "ink,y\n" + "".join(f"{['1.250', '2.940'][i % 2]},{i % 2}\n" for i in range(40)))
    assert read_csv_table(comma_file, "y").X["ink"].iloc[1] == 2.94


def _trained_model(tmp_path, path, target="y", decimal=None):
    """A small classifier trained on the file ``path`` and saved; returns the checkpoint's path."""
    return _fit_and_save(tmp_path, read_csv_table(path, target, decimal=decimal))[1]


def test_predict_refuses_a_file_whose_cells_decide_another_convention_than_training_read(tmp_path):
    # careless7 F1: trained on points ('3504.0'); the new file writes '307,0' and '3.504' (3504, not 3.504)
    point = _write(tmp_path, "weight,y\n" + "".join(f"{2000 + 37 * i}.0,{i % 2}\n" for i in range(40)))
    model = _trained_model(tmp_path, point)
    eu = _write(tmp_path, "displacement;weight\n307,0;3.504\n350,0;3.693\n", "eu.csv")
    with pytest.raises(CSVError, match=r"^predict: this file's cells decide a decimal comma \('displacement' holds "
                                       r"'307,0'\), but the model's training read column 'weight' with a decimal "
                                       r"point; pass --decimal comma .* or --decimal point"):
        predict_csv(model, eu)
    text, _ = predict_csv(model, eu, decimal="comma")  # (given: read as the user says, 3504: inside the range)
    assert [line.split(",")[-1] for line in text.splitlines()[1:]] == ["0", "0"]
    # careless7 F2a, the mirror: trained on decimal commas; the new rows write points ('0.560', '13.690')
    comma = _write(tmp_path, "a;b;y\n" + "".join(f"{10 + i % 7},{i:02d};0,{10 + i};{i % 2}\n" for i in range(40)),
                   "comma.csv")
    model = _trained_model(tmp_path, comma)
    us = _write(tmp_path, "a;b\n13.690;0.560\n12.100;0.500\n", "us.csv")
    with pytest.raises(CSVError, match=r"^predict: this file's cells decide a decimal point \('b' holds '0.560'\), "
                                       r"but the model's training read column 'a' with a decimal "
                                       r"comma; pass --decimal point"):
        predict_csv(model, us)
    assert predict_csv(model, us, decimal="point")[0].count("\n") == 3


def test_predict_says_whether_the_option_or_training_set_a_decimal_comma_reading(tmp_path):
    # careless7 F11: --decimal comma given to predict is not "as training read it"
    point = _write(tmp_path, "a;y\n" + "".join(f"{i}.5;{i % 2}\n" for i in range(40)))
    model = _trained_model(tmp_path, point)
    new = _write(tmp_path, "a\n1.5\n", "new.csv")
    with pytest.raises(CSVError, match=r"non-numeric value '1.5' in column 'a', line 2 \(read with a decimal comma, "
                                       r"dots grouping thousands, as --decimal comma says\)$"):
        predict_csv(model, new, decimal="comma")
