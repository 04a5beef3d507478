"""``nnlab predict`` and Stage 7 checkpoints: the training preprocessing applied exactly, no pickle, unseen values said,
and real tables from installed packages, damaged the way real files are."""

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnlab.cli import main
from nnlab.data.preprocess import apply_state, export_state, make_preprocessor
from nnlab.data.tabular import prepare_table, read_csv_table
from nnlab.predict import SavedModel
from nnlab.stages import stage7


def _frame(n=80, seed=0):
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue", "teal", "plum", "rust"])
    frame = pd.DataFrame({"x": rng.normal(size=n), "big": rng.normal(size=n) * 1e180,
                          "colour": colours[rng.choice(6, size=n, p=[0.4, 0.3, 0.2, 0.05, 0.03, 0.02])].astype(object),
                          "y": rng.integers(0, 2, size=n)})
    frame.loc[[3, 9], "x"] = np.nan
    frame.loc[[5], "colour"] = np.nan
    return frame


def test_saved_state_transforms_bit_identically_to_the_column_transformer():
    table = prepare_table(_frame(), "y")
    ct = make_preprocessor(table.numeric, table.categorical, table.prescale, max_categories=4)
    train, new = table.X.iloc[:60], table.X.iloc[60:].copy()
    new.loc[new.index[0], "colour"] = "violet"  # unseen: zeros, as the encoder's handle_unknown="ignore"
    new.loc[new.index[1], "x"] = np.nan
    ct.fit(train)
    state = json.loads(json.dumps(export_state(ct)))  # through JSON, as in a checkpoint
    assert state["categorical"]["columns"][0]["infrequent"]  # the cap grouped rare colours
    for rows in (train, new):
        ours, _ = apply_state(state, rows)
        np.testing.assert_array_equal(ours, ct.transform(rows))
    _, unseen = apply_state(state, new)
    assert [(u[0], u[1], u[2]) for u in unseen] == [("colour", ["violet"], 1)]


def test_stage7_checkpoint_predicts_exactly_as_the_trained_pipeline(tmp_path):
    config = stage7.Config().quick()
    table = prepare_table(_frame(200), "y")
    pipe = stage7.make_pipeline(table, config, hidden_layer_sizes=(8,), batch_size=16)
    pipe.fit(table.X.iloc[:150], table.y[:150])
    path = pipe.named_steps["mlp"].network_.save(tmp_path / "m.npz", extra=stage7.checkpoint_extra(table, pipe,
                                                                                                   config))
    with np.load(path, allow_pickle=False) as f:  # nothing in the file needs pickle
        assert all(f[k].dtype != object for k in f.files)
    saved = SavedModel.load(path)
    proba, notes = saved.predict_proba(table.X.iloc[150:])
    np.testing.assert_array_equal(proba, pipe.predict_proba(table.X.iloc[150:]))
    assert notes == []


def _train_colour_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["x,colour,label"]
    for i in range(80):
        colour = ["red", "green", "blue"][i % 3]
        x = rng.normal()
        lines.append(f"{x:.3f},{colour},{'yes' if x + (colour == 'red') > 0.5 else 'no'}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    assert main(["run", "7", "--quick", "--csv", str(tmp_path / "train.csv"), "--target", "label", "--save",
                 str(tmp_path / "m.npz"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    (tmp_path / "new.csv").write_text("colour,x\nred,0.1\nRed,0.2\npurple,0.3\nblue,\npurple,1.0\n")
    return tmp_path / "m.npz", tmp_path / "new.csv"


def test_unseen_categories_warn_in_one_line_and_strict_refuses(tmp_path, capsys):
    model, new = _train_colour_model(tmp_path, capsys)
    assert main(["predict", "--model", str(model), "--csv", str(new), "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.startswith("nnlab: warning: column 'colour': 2 value(s) never seen in "
                                                   "training ('Red', 'purple') in 3 row(s)")
    fill = SavedModel.load(model).state["numeric"]["fill"][0]  # the blank 'x' cell, filled as training filled its own
    assert (f"nnlab: warning: 1 missing number(s) filled with their column's training value, as training did: 'x' "
            f"(1, with {fill:g})\n") in err
    assert "same word in another case: 'Red' -> 'red'?" in err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "row,prediction,p_no,p_yes,outside_training_range" and len(lines) == 6  # the gap imputed
    assert main(["predict", "--model", str(model), "--csv", str(new), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--strict: column 'colour'" in err


def test_predict_errors_name_the_column(tmp_path, capsys):
    model, _ = _train_colour_model(tmp_path, capsys)
    for text, fragment in [("colour\nred\n", "the model needs column(s) 'x'"),
                           ("x,colour\nabc,red\n", "non-numeric value 'abc' in column 'x', line 2"),
                           ("x,colour\n1e300,red\n", "column 'x', line 2: the value is more than 1e+150 standard")]:
        (tmp_path / "bad.csv").write_text(text)
        assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "bad.csv")]) == 2
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1


SITE = Path(np.__file__).resolve().parents[1]


def _autompg() -> pd.DataFrame:
    """mlxtend's copy of the UCI Auto MPG table (392 cars, a names column), with the damage real files have."""
    names = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin", "car_name",
             "mpg"]
    with gzip.open(SITE / "mlxtend/data/data/autompg.csv.gz", "rt") as fh:
        frame = pd.read_csv(fh, header=None, names=names)
    rng = np.random.default_rng(0)
    frame.insert(0, "id", np.arange(1001, 1001 + len(frame)))  # a row number
    frame.loc[rng.choice(len(frame), 6, replace=False), "horsepower"] = np.nan
    frame.loc[rng.choice(len(frame), 4, replace=False), "mpg"] = np.nan
    frame["origin"] = frame["origin"].map({1: "usa", 2: "europe", 3: "japan"})  # categories as text
    frame["weight_ug"] = frame["weight"] * 4.5359237e198  # a unit gone wrong: values near 1e202
    return frame


@pytest.mark.skipif(not (SITE / "mlxtend/data/data/autompg.csv.gz").exists(), reason="mlxtend's data not installed")
def test_real_table_autompg_with_missing_values_categories_and_an_id(tmp_path, capsys):
    frame = _autompg()
    frame.to_csv(tmp_path / "auto.csv", sep=";", index=False)
    (tmp_path / "auto_bom.csv").write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, lineterminator="\r\n").encode())
    for name in ("auto.csv", "auto_bom.csv"):
        table = read_csv_table(tmp_path / name, "mpg")
        assert table.task == "regression" and table.rows_dropped == 4
        assert set(table.columns_dropped) == {"id", "car_name"} and "origin" in table.categorical
        assert table.prescale["weight_ug"] > 600 and table.X["horsepower"].isna().sum() == 6
    out = tmp_path / "out"
    code = main(["run", "7", "--quick", "--csv", str(tmp_path / "auto.csv"), "--target", "mpg", "--save",
                 str(tmp_path / "m.npz"), "--out", str(out), "--no-progress"])
    stdout, err = capsys.readouterr()
    assert code == 0 and err == ""
    m = json.loads((out / "stage7/metrics.json").read_text())["metrics"]
    nn, mean = m["table"]["nnlab MLP (chosen by CV)"]["rmse"][0], m["table"]["mean"]["rmse"][0]
    assert nn < 0.6 * mean  # mpg is well predicted from the car's measurements
    new = frame.drop(columns=["mpg"]).head(5)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--csv", str(tmp_path / "new.csv")]) == 0
    stdout, err = capsys.readouterr()
    assert err == "" and len(stdout.splitlines()) == 6
    assert main(["run", "7", "--quick", "--csv", str(tmp_path / "auto_bom.csv"), "--target", "origin", "--out",
                 str(tmp_path / "out2"), "--no-progress"]) == 0
    assert "classification: the target holds text (3 distinct labels)" in capsys.readouterr().out


@pytest.mark.skipif(not (SITE / "matplotlib/mpl-data/sample_data/Stocks.csv").exists(), reason="no sample data")
def test_real_table_matplotlib_stocks_as_shipped(tmp_path, capsys):
    """A comment line above the header, empty cells in most columns, a date per row."""
    path = SITE / "matplotlib/mpl-data/sample_data/Stocks.csv"
    code = main(["run", "7", "--quick", "--csv", str(path), "--target", "AAPL", "--out", str(tmp_path),
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "skipped 1 comment line(s) before the header" in out and "'Date' (identifier-like" in out
    assert "dropped 133 row(s) whose target 'AAPL' is missing" in out


def test_a_column_blank_on_every_row_is_warned_about(tmp_path, capsys):
    model, _ = _train_colour_model(tmp_path, capsys)
    (tmp_path / "blank.csv").write_text("x,colour\n,red\n ,blue\n")
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "blank.csv")]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err == ("nnlab: warning: column 'x' is empty on every row: filled with its training value, so it tells "
                   "the model nothing\n")


def test_a_column_named_in_another_case_gets_a_did_you_mean(tmp_path, capsys):
    model, _ = _train_colour_model(tmp_path, capsys)
    (tmp_path / "upper.csv").write_text("X,color\n0.1,red\n")
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "upper.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the model needs column(s) 'x', 'colour' (did you mean 'X'?); the columns" in err


def test_rows_far_outside_the_training_range_are_flagged_and_counted(tmp_path, capsys):
    """The rule: beyond the training min or max by more than the training range (max - min)."""
    model, _ = _train_colour_model(tmp_path, capsys)
    table = read_csv_table(tmp_path / "train.csv", "label")
    pool, _ = stage7.split_rows(table, stage7.Config().seed)
    x = table.X["x"].to_numpy(dtype=float)[pool]  # the rows the saved model was fitted on
    num = SavedModel.load(model).state["numeric"]
    assert (num["min"], num["max"]) == ([x.min()], [x.max()])
    low, high = x.min(), x.max()
    span = high - low
    values = [0.1, high + 0.99 * span, high + 1.01 * span, low - 1.01 * span, None, 1e12]
    (tmp_path / "far.csv").write_text("x,colour\n" + "".join(f"{'' if v is None else repr(float(v))},red\n"
                                                             for v in values))
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "far.csv"), "--out",
                 str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    filled, err = err.split("\n", 1)  # the None cell: said filled, as training filled its own
    assert filled.startswith("nnlab: warning: 1 missing number(s) filled with their column's training value")
    assert err == ("nnlab: warning: 3 of 6 row(s) hold values far outside the training range (beyond its min or max "
                   "by more than its width) in column(s) 'x' (3): their predictions extrapolate; see column "
                   "'outside_training_range'\n")
    rows = [line.split(",") for line in (tmp_path / "p.csv").read_text().splitlines()]
    assert rows[0][-1] == "outside_training_range" and [r[-1] for r in rows[1:]] == ["0", "0", "1", "1", "0", "1"]


def test_a_checkpoint_without_a_training_range_still_predicts_and_says_it_cannot_flag(tmp_path, capsys):
    config = stage7.Config().quick()
    table = prepare_table(_frame(200), "y")
    pipe = stage7.make_pipeline(table, config, hidden_layer_sizes=(8,), batch_size=16)
    pipe.fit(table.X.iloc[:150], table.y[:150])
    extra = stage7.checkpoint_extra(table, pipe, config)  # as checkpoints were written before the range
    path = pipe.named_steps["mlp"].network_.save(tmp_path / "old.npz", extra=extra)
    table.X.iloc[150:].to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(path), "--csv", str(tmp_path / "new.csv")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "row,prediction,p_0,p_1" and len(out.splitlines()) == 51
    assert err.count("\n") == 1 and "records no training range (saved by an older nnlab)" in err
    extra["preprocess"]["numeric"].update(min=[0.0], max=[1.0, 2.0])  # a damaged record: refused, not misread
    pipe.named_steps["mlp"].network_.save(tmp_path / "bad.npz", extra=extra)
    assert main(["predict", "--model", str(tmp_path / "bad.npz"), "--csv", str(tmp_path / "new.csv")]) == 2
    assert "the training range needs min and max, each 2 finite numbers (or null)" in capsys.readouterr().err


def test_regression_predictions_are_written_to_the_last_digit_and_one_feature_is_singular(tmp_path, capsys):
    """Predictions were written with 6 significant digits: a target of order 1e15 lost ten of its digits."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    pd.DataFrame({"x": x, "y": 1.234567891e15 + 1e14 * x}).to_csv(tmp_path / "big.csv", index=False)
    assert main(["run", "7", "--quick", "--csv", str(tmp_path / "big.csv"), "--target", "y", "--save",
                 str(tmp_path / "m.npz"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "120 rows, 1 feature column\n" in capsys.readouterr().out
    pd.DataFrame({"x": x[:5]}).to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--csv", str(tmp_path / "new.csv")]) == 0
    written = [float(line.split(",")[1]) for line in capsys.readouterr().out.splitlines()[1:]]
    values, _ = SavedModel.load(tmp_path / "m.npz").predict_values(pd.DataFrame({"x": x[:5]}), False)
    assert written == values.tolist()  # every digit: the text reads back as the very number predicted


def test_headers_differing_only_in_letter_case_are_said_in_one_message(tmp_path, capsys):
    # careless7 F12: not a did-you-mean for one of the columns
    model, _ = _train_colour_model(tmp_path, capsys)
    (tmp_path / "upper.csv").write_text("X,COLOUR\n0.1,red\n")
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "upper.csv")]) == 2
    err = capsys.readouterr().err
    assert err == ("nnlab: error: predict: the file's headers differ from the model's only in letter case: 'X' for "
                   "'x', 'COLOUR' for 'colour'; rename them as the model has them\n")


def test_missing_numbers_are_said_filled_and_strict_does_not_refuse_them(tmp_path, capsys):
    """predict filled a blank number with the training statistic silently; a column blank on every row has its own
    line (it tells the model nothing) and is not counted again."""
    model, _ = _train_colour_model(tmp_path, capsys)
    fill = SavedModel.load(model).state["numeric"]["fill"][0]
    (tmp_path / "gaps.csv").write_text("colour,x\nred,\nblue,\ngreen,0.3\n")
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "gaps.csv"), "--strict"]) == 0
    out, err = capsys.readouterr()
    assert err == ("nnlab: warning: 2 missing number(s) filled with their column's training value, as training did: "
                   f"'x' (2, with {fill:g})\n") and len(out.splitlines()) == 4
    (tmp_path / "blank.csv").write_text("colour,x\nred,\nblue,\n")
    assert main(["predict", "--model", str(model), "--csv", str(tmp_path / "blank.csv")]) == 0
    assert capsys.readouterr().err == ("nnlab: warning: column 'x' is empty on every row: filled with its training "
                                       "value, so it tells the model nothing\n")
