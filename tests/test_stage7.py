"""Stage 7: the protocol on a bundled set, leak-freedom, the parallel search, every input behaviour of the CSV path."""

import contextlib
import json

import numpy as np
import pandas as pd
import pytest

from nnlab.cli import main
from nnlab.data.tabular import CSVError, prepare_table, read_csv, read_csv_table
from nnlab.errors import NnlabRuntimeError
from nnlab.stages import stage7


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return stage7.run(stage7.Config().quick(), tmp_path_factory.mktemp("s7"))


def test_breast_cancer_protocol(result):
    m = result.metrics
    assert m["data"]["rows"] == 569 and m["data"]["task"] == "classification"
    assert sum(m["split"][k] for k in ("train", "validation", "test")) == 569
    rows = m["table"]
    assert set(rows) == {"nnlab MLP (chosen by CV)", "majority class", "LogisticRegression", "sklearn MLPClassifier"}
    for rep in rows.values():
        p, lo, hi = rep["accuracy"]
        assert lo <= p <= hi
    assert rows["nnlab MLP (chosen by CV)"]["accuracy"][0] > 0.9
    assert rows["nnlab MLP (chosen by CV)"]["accuracy"][0] > rows["majority class"]["accuracy"][0]
    assert "roc_auc" in rows["nnlab MLP (chosen by CV)"]
    assert len(m["search"]) == 3 and m["search"][0]["cv_loss"] <= m["search"][-1]["cv_loss"]
    assert len(m["features_used"]) == 30 and m["columns_dropped"] == {}
    assert np.asarray(m["confusion"]).sum() == m["split"]["test"]


def test_search_never_sees_test_rows(monkeypatch, tmp_path):
    seen = []
    real = stage7.search

    def spy(table, rows, c, n_jobs=None):
        seen.append(np.array(rows))
        return real(table, rows, c, n_jobs)

    monkeypatch.setattr(stage7, "search", spy)
    config = stage7.Config().quick()
    stage7.run(config, tmp_path)
    _, test = stage7.split_rows(stage7.load_table(config), config.seed)
    assert seen and all(np.intersect1d(rows, test).size == 0 for rows in seen)


def test_split_is_stratified_and_fixed_by_seed():
    table = stage7.load_table(stage7.Config())
    a = stage7.split_rows(table, 1)
    b = stage7.split_rows(table, 1)
    c = stage7.split_rows(table, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert np.intersect1d(*a).size == 0 and len(a[0]) + len(a[1]) == len(table.y)
    assert abs(table.y[a[1]].mean() - table.y.mean()) < 0.02


def test_parallel_search_equals_sequential():
    config = stage7.Config(dataset="iris").quick()
    table = stage7.load_table(config)
    rows, _ = stage7.split_rows(table, config.seed)
    two = stage7.search(table, rows, config, n_jobs=2)
    one = stage7.search(table, rows, config, n_jobs=1)
    assert [r["cv_loss_folds"] for r in two] == [r["cv_loss_folds"] for r in one]
    assert [r["recipe"] for r in two] == [r["recipe"] for r in one]


def test_a_diverging_candidate_loses_the_search_quietly(monkeypatch, capfd):
    """diabetes in full mode used to stop with an overflow error: a diverging recipe must only lose."""
    space = [{"mlp__hidden_layer_sizes": [(16,)], "mlp__activation": ["relu"], "mlp__alpha": [0.0],
              "mlp__batch_size": [16], "mlp__solver": ["sgd"], "mlp__learning_rate_init": [0.01, 50.0]}]
    monkeypatch.setattr(stage7, "SEARCH_SPACE", space)
    config = stage7.Config(dataset="diabetes", candidates=2).quick()
    table = stage7.load_table(config)
    rows, _ = stage7.split_rows(table, config.seed)
    results = stage7.search(table, rows, config)
    assert [r["params"]["learning_rate_init"] for r in results] == [0.01, 50.0]
    assert np.isfinite(results[0]["cv_loss"]) and results[1]["cv_loss"] == np.inf
    assert results[1]["diverged_folds"] == config.folds
    assert capfd.readouterr().err == ""  # no NumPy or scikit-learn warning, in this process or a worker


def _write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _good_rows(n=30, with_text=False, sep=","):
    rng = np.random.default_rng(0)
    lines = [sep.join(["x1", "x2", "kind", "label"] if with_text else ["x1", "x2", "label"])]
    for i in range(n):
        a, b = rng.normal(size=2)
        label = "yes" if a + b > 0 else "no"
        cells = [f"{a:.3f}", f"{b:.3f}"] + ([["red", "blue"][i % 2]] if with_text else []) + [label]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, *capsys.readouterr()


def _run(capsys, tmp_path, path, target, *extra):
    out = tmp_path / "out"
    code, stdout, err = _cli(capsys, "run", "7", "--csv", str(path), "--target", target, "--quick", "--no-progress",
                             "--out", str(out), *extra)
    metrics = json.loads((out / "stage7/metrics.json").read_text())["metrics"] if code == 0 else None
    return code, stdout, err, metrics


def test_good_csv_classification(tmp_path, capsys):
    code, out, err, m = _run(capsys, tmp_path, _write(tmp_path, _good_rows(40)), "label")
    assert code == 0 and "classification: the target holds text (2 distinct labels)" in out and err == ""
    assert m["features_used"] == ["x1", "x2"] and m["data"]["classes"] == ["no", "yes"]


def test_good_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = ["a,b,price"] + [f"{a:.3f},{b:.3f},{3 * a - b + 0.1 * rng.normal():.4f}"
                            for a, b in rng.normal(size=(40, 2))]
    code, out, _, m = _run(capsys, tmp_path, _write(tmp_path, "\n".join(rows)), "price")
    assert code == 0 and "regression: the target holds non-integer numbers" in out and "rmse" in out
    assert m["table"]["nnlab MLP (chosen by CV)"]["r2"][0] > 0.5


def test_text_columns_are_one_hot_encoded(tmp_path):
    table = read_csv_table(_write(tmp_path, _good_rows(20, with_text=True)), "label")
    assert table.numeric == ["x1", "x2"] and table.categorical == ["kind"] and table.classes == ["no", "yes"]
    with pytest.raises(CSVError, match=r"non-numeric value 'red' in column 'kind', line 2 \(--categorical none makes "
                                       r"text an error; without it text columns are one-hot"):
        read_csv_table(tmp_path / "data.csv", "label", categorical="none")


def test_missing_target_rows_are_dropped_and_counted(tmp_path, capsys):
    lines = _good_rows(40).splitlines()
    for k in (3, 7, 20):
        lines[k] = lines[k].rsplit(",", 1)[0] + ","  # blank label
    lines[9] = lines[9].rsplit(",", 1)[0] + ",NA"
    code, out, _, m = _run(capsys, tmp_path, _write(tmp_path, "\n".join(lines)), "label")
    assert code == 0 and "dropped 4 row(s) whose target 'label' is missing (line 4, 8, 10, ...)" in out
    assert m["data"]["rows"] == 36 and m["data"]["rows_dropped_missing_target"] == 4


def test_missing_features_are_imputed_from_training_rows(tmp_path):
    lines = _good_rows(20).splitlines()
    lines[1] = "," + lines[1].split(",", 1)[1]  # blank x1 on the first data line
    table = read_csv_table(_write(tmp_path, "\n".join(lines)), "label")
    assert table.X["x1"].isna().sum() == 1
    pipe = stage7.make_pipeline(table, stage7.Config().quick())
    X = pipe.named_steps["prep"].fit(table.X.iloc[1:]).transform(table.X.iloc[:1])
    assert np.isfinite(X).all() and X[0, 0] == 0.0  # the training mean, standardised


def _id_table(n=60):
    rng = np.random.default_rng(2)
    lines = ["id,name,x,colour,y"]
    for i in range(n):
        x = rng.normal()
        lines.append(f"{100 + i},person {i},{x:.3f},{['red', 'green'][i % 2]},{int(x > 0)}")
    return "\n".join(lines) + "\n"


def test_identifier_columns_are_dropped_with_a_note_and_kept_by_flag(tmp_path, capsys):
    path = _write(tmp_path, _id_table(120))
    code, out, _, m = _run(capsys, tmp_path, path, "y")
    assert code == 0 and "dropped column(s) 'id' (identifier-like: 120 distinct integers in file order" in out
    assert m["features_used"] == ["x", "colour"]
    assert set(m["columns_dropped"]) == {"id", "name"}
    assert m["columns_dropped"]["name"] == "identifier-like: 120 distinct values in 120 rows"
    code, out, _, m = _run(capsys, tmp_path, path, "y", "--keep-id-columns")
    assert code == 0 and m["features_used"] == ["id", "name", "x", "colour"] and m["columns_dropped"] == {}
    # kept, a text column of 96 distinct training values is capped at 50 one-hot columns (49 + "infrequent")
    assert m["data"]["inputs_after_preprocessing"] == 1 + 50 + 1 + 2


def test_too_many_categories_is_dropped(tmp_path):
    lines = ["city,x,y"] + [f"c{i % 60},{i % 7},{i % 2}" for i in range(600)]
    table = read_csv_table(_write(tmp_path, "\n".join(lines)), "y")
    assert table.columns_dropped == {"city": "60 distinct values, more than the cap of 50 categories"}
    assert read_csv_table(tmp_path / "data.csv", "y", max_categories=60).features_used == ["city", "x"]


@pytest.mark.parametrize(
    "values, task, reason",
    [
        (["a", "b", "c"] * 20, "classification", "the target holds text (3 distinct labels)"),
        ([0, 1] * 30, "classification", "the target holds two distinct values"),
        ([float(k) + 0.5 for k in range(60)], "regression", "the target holds non-integer numbers"),
        (list(range(50)) * 12, "classification", "50 distinct integers, 12 rows each on average (at least 10"),
        (list(range(200)) * 2, "regression", "200 distinct integers, 2.0 rows each on average (fewer than 10"),
    ],
)
def test_task_is_inferred_with_a_reason(values, task, reason):
    frame = pd.DataFrame({"x": np.arange(len(values)) % 7, "y": values})
    table = prepare_table(frame, "y")
    assert table.task == task and reason in table.task_reason


def test_small_classes_are_named(tmp_path, capsys):
    lines = ["x,y"] + [f"{i * 7 % 34},{'a' if i < 30 else 'b' if i < 33 else 'c'}" for i in range(34)]
    code, _, err, _ = _run(capsys, tmp_path, _write(tmp_path, "\n".join(lines)), "y")
    assert code == 2 and err.count("\n") == 1
    assert "2 of 3 classes are too small: 'b' has 3, 'c' has 1 row(s); a 20 % test split and 3-fold " \
           "cross-validation need at least 5 rows of every class" in err


def test_float_target_forced_to_classification_says_each_class_is_too_small(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["x,y"] + [f"{v:.3f},{v * 2 + 0.01:.3f}" for v in rng.normal(size=40)]
    code, _, err, _ = _run(capsys, tmp_path, _write(tmp_path, "\n".join(lines)), "y", "--task", "classification")
    assert code == 2 and "40 of 40 classes are too small" in err and "has 1" in err


def test_huge_magnitudes_are_rescaled_exactly_and_quietly(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    frame = pd.DataFrame({"x": x, "big": x * 1e200, "tiny": x * 1e-200, "y": (x > 0).astype(int)})
    table = prepare_table(frame, "y")
    peak = np.abs(x).max()
    assert table.prescale == {"big": np.frexp(peak * 1e200)[1], "tiny": np.frexp(peak * 1e-200)[1]}
    assert table.prescale["big"] > 600 and table.prescale["tiny"] < -600
    prep = stage7.make_pipeline(table, stage7.Config()).named_steps["prep"]
    with np.errstate(all="raise"):  # no overflow, underflow or invalid value anywhere
        Z = prep.fit_transform(table.X)
    ref = (x - x.mean()) / x.std()
    for j in range(3):
        np.testing.assert_allclose(Z[:, j], ref, rtol=1e-12, atol=1e-12)  # no column zeroed or blown up
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    code, out, err, m = _run(capsys, tmp_path, path, "y")
    assert code == 0 and err == "" and "column 'big' reaches" in out and f"by 2^{table.prescale['big']} (exact)" in out
    assert f"multiplied by 2^{-table.prescale['tiny']} (exact)" in out and "2^-" not in out  # not "divided by 2^-k"
    assert m["features_used"] == ["x", "big", "tiny"]


def test_infinite_value_is_an_error(tmp_path):
    with pytest.raises(CSVError, match="infinite value in column 'b', line 3"):
        read_csv_table(_write(tmp_path, "a,b,y\n1,2,0\n2,inf,1\n"), "y")


@pytest.mark.parametrize(
    "sep, encoding, newline",
    [(",", "utf-8", "\n"), (";", "utf-8", "\n"), ("\t", "utf-8", "\n"), ("|", "utf-8", "\n"),
     (",", "utf-8-sig", "\r\n"), (";", "utf-8-sig", "\r\n")],
)
def test_separator_bom_and_line_ends(tmp_path, sep, encoding, newline):
    text = _good_rows(12, with_text=True, sep=sep).replace("\n", newline)
    frame = read_csv(_write(tmp_path, text, encoding=encoding))
    reference = read_csv(_write(tmp_path, _good_rows(12, with_text=True), name="ref.csv"))
    assert list(frame.columns) == ["x1", "x2", "kind", "label"]
    pd.testing.assert_frame_equal(frame, reference, check_like=False)


def test_quoted_fields_keep_their_separators(tmp_path):
    text = 'name,x,y\n"Smith, J.",1,0\n"Doe, A.",2,1\n"O""Neil",3,0\n'
    frame = read_csv(_write(tmp_path, text))
    assert frame["name"].tolist() == ["Smith, J.", "Doe, A.", 'O"Neil'] and frame["x"].tolist() == [1, 2, 3]


def test_comment_lines_before_the_header_are_skipped(tmp_path):
    table = read_csv_table(_write(tmp_path, "# source: a test\n" + _good_rows(20)), "label")
    assert table.notes[0] == "skipped 1 comment line(s) before the header" and len(table.y) == 20


@pytest.mark.parametrize(
    "text, args, fragment",
    [
        (None, [], "not found"),
        ("a,b\n1,2\n3,4\n", ["--target", "zzz"], "target column 'zzz' not found; the columns are: a, b"),
        ("a;b;y\n1;2\n3;4;5\n", [], "the columns are: a;b;y (the header holds ';': is the file ';'-separated?)"),
        ("a,b,y\n1,2,0\n1,oops,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)), [],
         "non-numeric value 'oops' in column 'b', line 3 (the column's other values are numbers)"),
        ("a,y\n1,cat\n2,cat\n3,cat\n", [], "single class"),
        ("a,y\n1,0\n2,1\n", ["--folds", "5"], "too few"),
        ("", [], "empty"),
        ("a,b,y\n1,2\n", [], "target column 'y' holds no values"),  # (a short line is padded with missing values)
        ("a,b,y\n1,2,3,4\n", [], "line 2 has 4 fields, the header has 3"),
        ("1,2,3\n1,2\n", [], "(the first line holds only numbers: is the header row missing?)"),
        ("a,a,y\n1,2,3\n", [], "the header must name every column once"),
        ("a,y\n1,\n2,NA\n", [], "target column 'y' holds no values"),
        ("a,y\n1,x\n2,z\n", ["--task", "regression"], "regression needs a numeric target; 'y' has 'x' on line 2"),
    ],
)
def test_bad_csv_one_line_exit_2(tmp_path, capsys, text, args, fragment):
    path = tmp_path / "missing.csv" if text is None else _write(tmp_path, text)
    argv = ["run", "7", "--csv", str(path), "--quick", "--out", str(tmp_path / "out")]
    if "--target" not in args:
        argv += ["--target", "y"]
    code, _, err = _cli(capsys, *argv, *args)
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "stage7").exists()


def test_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,y\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(CSVError, match="not a UTF-8 text file"):
        read_csv(path)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["breast_cancer", "wine", "iris", "diabetes"])
def test_every_bundled_dataset_in_full_mode(dataset, tmp_path, capfd):
    """The documented datasets, at the full search budget (regression included: it diverged here once)."""
    result = stage7.run(stage7.Config(dataset=dataset), tmp_path)
    assert capfd.readouterr().err == ""
    m = result.metrics
    assert len(m["search"]) == stage7.Config().candidates and np.isfinite(m["search"][0]["cv_loss"])
    nn = m["table"]["nnlab MLP (chosen by CV)"]
    if dataset == "diabetes":
        assert m["data"]["task"] == "regression" and nn["rmse"][0] < m["table"]["mean"]["rmse"][0]
    else:
        assert m["data"]["task"] == "classification" and nn["accuracy"][0] > 0.85


@pytest.mark.parametrize("failure", [KeyboardInterrupt, NnlabRuntimeError])
def test_save_writes_no_model_when_the_run_does_not_finish(tmp_path, capsys, monkeypatch, failure):
    def fail(*args, **kwargs):
        raise failure("stopped after the final fit")

    monkeypatch.setattr(stage7, "_figures", fail)  # the last step of the stage, after the final network is trained
    model = tmp_path / "m.npz"
    with contextlib.suppress(KeyboardInterrupt):
        code, _, err, _ = _run(capsys, tmp_path, _write(tmp_path, _good_rows(40)), "label", "--save", str(model))
        assert (code, err.strip()) in ((130, "nnlab: interrupted"), (2, "nnlab: error: stopped after the final fit"))
    assert not model.exists() and not (tmp_path / "out").exists()
    monkeypatch.undo()
    code, _, _, _ = _run(capsys, tmp_path, _write(tmp_path, _good_rows(40)), "label", "--save", str(model))
    assert code == 0 and model.exists()


def test_a_dirty_numeric_target_names_its_words_and_regression_drops_them(tmp_path, capsys):
    rows = [f"{i % 7},{'oops' if i == 9 else 'n/a' if i == 4 else f'{i / 3:.3f}'}" for i in range(60)]
    path = _write(tmp_path, "a,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(CSVError, match=r"target 'y' holds numbers but 1 cell\(s\) are not: 'oops' \(line 11\); .* "
                                       r"--task regression to drop those rows"):
        read_csv_table(path, "y")
    table = read_csv_table(path, "y", task="regression")
    assert len(table.y) == 58 and "dropped 1 row(s) whose target 'y' is not a number: 'oops' (line 11)" in table.notes


def test_a_target_with_a_new_value_on_every_row_is_called_an_identifier(tmp_path, capsys):
    path = _write(tmp_path, "day,x\n" + "".join(f"{d}-Sep-03,{d % 5}\n" for d in range(1, 31)))
    code, _, err, _ = _run(capsys, tmp_path, path, "day")
    assert code == 2 and "target 'day' holds a different value on every row, like an identifier or a date" in err


def test_a_quick_run_says_that_sklearns_mlp_had_the_short_budget(tmp_path, capsys):
    code, out, _, _ = _run(capsys, tmp_path, _write(tmp_path, _good_rows(40)), "label")
    assert code == 0 and "scikit-learn's MLP had this run's short budget (40 epochs, patience 5; a full run " \
                         "gives 300 and 20)" in out


DEBIAN = "/usr/share/distro-info/debian.csv"


@pytest.mark.skipif(not __import__("os").path.exists(DEBIAN), reason="distro-info-data not installed")
def test_real_table_debian_releases_short_rows_and_twenty_rows_of_regression(tmp_path, capsys):
    """distro-info-data's table as shipped: most lines omit their trailing empty fields, two lack the target,
    and twenty rows leave a test split of four (too few for five quantile strata)."""
    code, out, err, m = _run(capsys, tmp_path, DEBIAN, "version")
    assert code == 0 and err == "" and m["data"]["task"] == "regression"
    assert "have fewer fields than the header (line 2, 3, 4, ...); the missing trailing fields are read as " \
           "missing values" in out
    assert m["data"]["rows_dropped_missing_target"] == 2 and m["split"]["test"] == 4


def test_summary_scores_keep_their_digits_at_any_scale():
    """An RMSE in units of 1e-12 printed 0.0000 [0.0000, 0.0000]; in units of 1e12, fourteen digits."""
    from nnlab.stages.stage7 import score_text

    assert score_text("rmse", 5.2e-11, 4.1e-11, 6.3e-11) == "5.2e-11 [4.1e-11, 6.3e-11]"
    assert score_text("rmse", 53670400497415.4766, 5e13, 6e13) == "5.367e+13 [5e+13, 6e+13]"
    assert score_text("rmse", 0.51234, 0.4, 0.6) == "0.5123 [0.4, 0.6]"
    assert score_text("accuracy", 1.0, 0.95, 1.0) == "1.0000 [0.9500, 1.0000]"


def _recipe(rank_losses, layers, diverged=0):
    mean = float("inf") if diverged else sum(rank_losses) / len(rank_losses)
    return {"recipe": f"{'-'.join(map(str, layers))} relu", "cv_loss": mean,
            "cv_loss_folds": rank_losses, "diverged_folds": diverged, "hidden_layer_sizes": layers}


WINNER_FOLDS = [0.06, 0.13, 0.04, 0.03, 0.15]
NOISY = [0.01, 0.03, -0.01, 0.02, 0.0]  # mean 0.01, se 0.00707, |t| 1.41 < 2.78: a tie
STEADY = [0.05, 0.06, 0.05, 0.06, 0.05]  # mean 0.054, |t| 22: worse


def _shifted(gaps):
    return [w + g for w, g in zip(WINNER_FOLDS, gaps)]


def test_each_recipe_is_compared_with_the_winner_fold_by_fold():
    from nnlab.report import context

    search = [_recipe(WINNER_FOLDS, [64]), _recipe(_shifted(NOISY), [32, 32]),
              _recipe(_shifted(STEADY), [16]), _recipe(["inf"] * 5, [128], diverged=5)]
    vs = context.against_winner(search, 0.95)
    assert vs["ties"] == [2] and vs["worse"] == [3, 4] and vs["folds"] == 5
    assert vs["cells"][0] == "(winner)"
    assert vs["cells"][1] == "+0.010 ± 0.0071, \\|t\\| 1.41: cannot tell apart"
    assert vs["cells"][2].endswith("\\|t\\| 22.05: worse") and vs["cells"][3] == "worse: diverged on 5 fold(s)"
    assert abs(vs["t_max_tie"] - 2 ** 0.5) < 1e-9 and abs(vs["t_critical"] - 2.776445) < 1e-6
    assert vs["tied_shapes"] == 2 and vs["tied_depths"] == ["one", "two"] and vs["tied_widths"] == "32 to 64"


def _render_stage7(result, search):
    from nnlab.report import context, sections

    results = {"7": json.loads(json.dumps(result.to_json()))}
    results["7"]["metrics"]["search"] = search
    text = sections.render_section("stage7", context.stage7(results), "docs/figures", "7", result.figures)
    return " ".join(text.split())


def test_the_layers_sentence_says_what_the_folds_decide(result):
    """Three branches: ties of other shapes, ties of the same shape only, and no tie at all."""
    other_shapes = _render_stage7(result, [_recipe(WINNER_FOLDS, [64]), _recipe(_shifted(NOISY), [32, 32]),
                                           _recipe(_shifted(STEADY), [16])])
    assert "Rank 2 cannot be told apart from the winner (|t| at most 1.41); rank 3 is worse." in other_shapes
    assert ("Among the winner and that recipe are 2 shapes of network, one and two hidden layers of 32 to 64 "
            "units, so the data do not choose the layers and neurons") in other_shapes
    same_shape = _render_stage7(result, [_recipe(WINNER_FOLDS, [64]), _recipe(_shifted(NOISY), [64]),
                                         _recipe(_shifted(STEADY), [16])])
    assert ("The winner and that recipe all have one layer of 64 units and differ only in activation" in same_shape
            and "every recipe drawn with other hidden layers is worse than the winner on the folds" in same_shape)
    assert "do not choose the layers" not in same_shape
    only_one_shape = _render_stage7(result, [_recipe(WINNER_FOLDS, [64]), _recipe(_shifted(NOISY), [64])])
    assert "no recipe drawn has other hidden layers, so the layers and neurons were not put to the test" \
        in only_one_shape
    clear = _render_stage7(result, [_recipe(WINNER_FOLDS, [64]), _recipe(_shifted(STEADY), [32, 32])])
    assert ("Every other recipe is worse than the winner on the folds (|t| at least 22.05), so among the 2 recipes "
            "drawn the data choose the winner, and its one layer of 64 units with it.") in clear
    assert "cannot be told apart from the winner" not in clear


def test_the_real_search_table_has_the_paired_column(result):
    text = _render_stage7(result, result.to_json()["metrics"]["search"])
    assert "(winner) |" in text and "paired over the 3 folds" in text
    assert all("hidden_layer_sizes" in s for s in result.metrics["search"])


def test_sklearns_mlp_early_stops_on_our_validation_fraction(monkeypatch):
    """"The same early stopping": scikit-learn's MLP is built with nnlab's validation fraction and patience."""
    import sklearn.neural_network

    built = []
    real = sklearn.neural_network.MLPClassifier

    class Spy(real):
        def __init__(self, **kwargs):
            built.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(sklearn.neural_network, "MLPClassifier", Spy)
    table = prepare_table(pd.DataFrame({"a": np.random.default_rng(0).normal(size=40), "label": [0, 1] * 20}), "label")
    c = stage7.Config().quick()
    models = stage7.baselines(table, table.X, table.y, c)
    assert built and built[0]["validation_fraction"] == stage7.VALIDATION_FRACTION != 0.1  # 0.1: sklearn's default
    assert built[0]["n_iter_no_change"] == c.patience and built[0]["early_stopping"]
    assert models["sklearn MLPClassifier"].named_steps["model"].validation_fraction == stage7.VALIDATION_FRACTION


def _messy_rows(n=60):
    """An identifier, a name per row, a constant, a text category and blanks: every treatment Stage 7 has."""
    rng = np.random.default_rng(5)
    lines = ["id,name,x1,x2,const,kind,label"]
    for i in range(n):
        a, b = rng.normal(size=2)
        x1 = "" if i in (4, 11, 30) else f"{a:.3f}"
        kind = "" if i == 7 else ["red", "blue", "green"][i % 3]
        lines.append(f"{i + 1},item {i},{x1},{b:.3f},7,{kind},{'yes' if a + b > 0 else 'no'}")
    return "\n".join(lines) + "\n"


def test_the_run_records_what_it_did_to_each_column(tmp_path, capsys):
    path = _write(tmp_path, _messy_rows())
    code, out, err, m = _run(capsys, tmp_path, path, "label")
    assert code == 0 and err == ""
    record = {e["column"]: e for e in m["column_treatment"]}
    assert [e["column"] for e in m["column_treatment"]] == ["x1", "x2", "const", "kind", "id", "name"]  # (kept first)
    table = read_csv_table(path, "label")
    pool, _ = stage7.split_rows(table, stage7.Config().seed)
    x1 = record["x1"]
    assert (x1["treatment"], x1["inputs"], x1["missing_cells"], x1["filled_by"]) == ("numeric", 1, 3,
                                                                                       "mean of the fitted rows")
    assert x1["filled_with"] == pytest.approx(np.nanmean(table.X["x1"].to_numpy(dtype=float)[pool]), rel=1e-12)
    assert record["x2"]["missing_cells"] == 0 and record["x2"]["filled_with"] is None
    kind = record["kind"]  # three colours and the blank's own category
    assert (kind["treatment"], kind["inputs"], kind["categories"], kind["missing_cells"], kind["filled_with"]) == \
        ("one-hot", 4, 4, 1, "(missing)")
    assert record["const"]["constant"] and not record["x1"]["constant"]
    assert record["id"]["treatment"] == "dropped" and record["id"]["reason_dropped"].startswith("identifier-like")
    assert sum(e["inputs"] for e in record.values()) == m["data"]["inputs_after_preprocessing"]
    assert "3 numeric, 1 one-hot ('kind' -> 4 inputs), 2 dropped ('id', 'name'); 4 missing cell(s) filled in 2 " \
           "column(s) ('x1', 'kind'); per column: columns.csv" in out
    assert "column(s) 'const' hold one value on every row: kept, but they tell the model nothing" in out
    rows = (tmp_path / "out/stage7/columns.csv").read_text().splitlines()
    assert rows[0].startswith("column,treatment,inputs") and len(rows) == 1 + len(record)
    assert rows[1] == f"x1,numeric,1,,,3,mean of the fitted rows,{x1['filled_with']!r},False,,"


def test_a_table_of_constant_columns_says_there_is_nothing_to_learn(tmp_path, capsys):
    text = "a,b,label\n" + "".join(f"{'' if i == 3 else 1},x,{'yes' if i % 2 else 'no'}\n" for i in range(40))
    code, out, _, m = _run(capsys, tmp_path, _write(tmp_path, text), "label")
    assert code == 0 and "every feature column holds one value on every row (the blanks of 'a' are filled with " \
        "that value, and no missing indicator is added): there is nothing to learn" in out
    assert [e["constant"] for e in m["column_treatment"]] == [True, True]


def test_a_text_column_with_one_value_and_blanks_is_not_constant_but_a_number_column_is(tmp_path):
    """One-hot encoding makes a blank its own category, so 'yes'/blank is two inputs (here it is the target);
    mean imputation fills a number column's blanks with its one value and adds no indicator."""
    from nnlab.data.column_record import column_record, constant_filled
    from nnlab.data.preprocess import make_preprocessor

    text = "flag,level,x,label\n" + "".join(f"{'yes' if i % 2 else ''},{'' if i % 3 else 4},{i % 7},{i % 2}\n"
                                              for i in range(40))
    table = read_csv_table(_write(tmp_path, text), "label")
    prep = make_preprocessor(table.numeric, table.categorical, table.prescale).fit(table.X)
    record = {e["column"]: e for e in column_record(table, prep, table.X)}
    flag = prep.transform(table.X)[:, list(prep.get_feature_names_out()).index("flag_yes")]
    assert np.array_equal(flag, table.y.astype(float))  # the 'yes'/blank column carries the target
    assert (record["flag"]["treatment"], record["flag"]["inputs"], record["flag"]["constant"]) == ("one-hot", 2, False)
    level = prep.transform(table.X)[:, list(prep.get_feature_names_out()).index("level")]
    assert record["level"]["missing_cells"] > 0 and np.ptp(level) == 0 and record["level"]["constant"]
    assert constant_filled(list(record.values())) == ["level"]


def test_the_small_data_threshold_is_where_the_printed_exact_interval_first_excludes_ninety_percent():
    from scipy.stats import binomtest

    def low(m):  # the lower end of the exact interval the stage prints for m right out of m
        return binomtest(m, m).proportion_ci(stage7.INTERVAL_LEVEL, "exact").low

    m = stage7.SMALL_TEST_ROWS
    assert low(m - 1) <= stage7.RULE_OUT_ACCURACY < low(m)


def test_the_small_data_note_says_what_one_row_weighs_in_the_task_s_headline_score():
    c = stage7.Config()
    classification = stage7.small_data_note(60, 12, 48, c, "classification")
    regression = stage7.small_data_note(60, 12, 48, c, "regression")
    assert "one test row moves the test accuracy by 1/12 " in classification and "90% accuracy" in classification
    assert "1/12 of the mean squared error whose root is the test RMSE" in regression
    assert "moves" not in regression and "accuracy" not in regression


def test_the_column_line_does_not_call_a_table_complete_when_a_dropped_column_had_blanks(tmp_path):
    from nnlab.data.column_record import column_record, record_line
    from nnlab.data.preprocess import make_preprocessor

    text = "name,x,label\n" + "".join(f"{'' if i % 3 == 0 else f'item {i}'},{i % 7},{i % 2}\n" for i in range(60))
    table = read_csv_table(_write(tmp_path, text), "label")
    assert "name" in table.columns_dropped  # identifier-like, though 20 of its cells are blank
    prep = make_preprocessor(table.numeric, table.categorical, table.prescale).fit(table.X)
    line = record_line(column_record(table, prep, table.X))
    assert line == "1 numeric, 1 dropped ('name'); no cell of a kept column missing; per column: columns.csv"


def test_collapsed_bootstrap_intervals_are_found_and_given_an_exact_interval():
    scores = {"a": {"accuracy": (1.0, 1.0, 1.0), "macro_f1": (1.0, 1.0, 1.0)},
              "b": {"accuracy": (0.9, 0.75, 1.0), "roc_auc": (np.nan, np.nan, np.nan)}}
    found = stage7.degenerate_intervals(scores, 20)
    assert [(d["model"], d["metric"]) for d in found] == [("a", "accuracy"), ("a", "macro_f1")]
    low, high = found[0]["exact_interval"]  # Clopper-Pearson with 20 of 20 right: low = 0.025 ** (1 / 20)
    assert low == pytest.approx(0.025 ** (1 / 20), rel=1e-9) and high == 1.0
    assert "macro_f1" not in stage7.degenerate_note(found, "accuracy", 20)


def test_a_collapsed_interval_is_blamed_on_every_row_right_not_on_the_test_size():
    """A perfect score collapses the bootstrap at 500 test rows as at 16: the note says so, not 'few rows'."""
    for rows in (16, 500):
        found = stage7.degenerate_intervals({"a": {"accuracy": (1.0, 1.0, 1.0)}}, rows)
        note = stage7.degenerate_note(found, "accuracy", rows)
        assert f"every one of the {rows} test rows was right, so every resample scores the same; that is not " \
               "certainty: the exact (Clopper-Pearson) 95% interval is a [" in note
        assert "small" not in note and "few" not in note
    wrong = stage7.degenerate_intervals({"a": {"accuracy": (0.0, 0.0, 0.0)}}, 16)
    assert "every one of the 16 test rows was wrong" in stage7.degenerate_note(wrong, "accuracy", 16)


def test_a_tiny_table_is_called_small_and_a_collapsed_interval_is_not_certainty(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(2, 3, 18), rng.uniform(-3, -2, 18)])  # separable: every test row right
    text = "x,noise,label\n" + "".join(f"{v:.3f},{rng.normal():.3f},{'yes' if v > 0 else 'no'}\n" for v in x)
    code, out, _, m = _run(capsys, tmp_path, _write(tmp_path, text), "label")
    assert code == 0 and m["split"]["test"] < stage7.SMALL_TEST_ROWS
    assert f"very small data set: 36 rows leave {m['split']['test']} test rows (fewer than " in out
    assert "the search's batch sizes (up to 64) exceed the about" in out
    collapsed = [d for d in m["degenerate_intervals"] if d["metric"] == "accuracy"]
    assert collapsed and all(m["table"][d["model"]]["accuracy"][1] == m["table"][d["model"]]["accuracy"][2]
                             for d in collapsed)
    assert "collapses to one value for" in out and "not certainty: the exact (Clopper-Pearson) 95% interval is" in out
    assert out.count("degenerate; exact [") == len(collapsed)


def test_the_stage7_report_says_what_was_done_to_each_column_of_a_csv(tmp_path, capsys):
    from nnlab.report import context, sections

    code, _, _, _ = _run(capsys, tmp_path, _write(tmp_path, _messy_rows()), "label")
    results = {"7": json.loads((tmp_path / "out/stage7/metrics.json").read_text())}

    def render():
        figures = results["7"]["figures"]
        section = sections.render_section("stage7", context.stage7(results), "docs/figures", "7", figures)
        return " ".join(section.split())

    text = render()
    assert "3 kept as numbers, 1 one-hot encoded (`kind` into 4 inputs), 2 dropped; 4 missing cells filled in " \
           "`x1` (3), `kind` (1). Column `const` holds one value on every row" in text
    results["7"]["metrics"]["degenerate_intervals"] = [{"model": "m", "metric": "accuracy", "value": 1.0,
                                                        "exact_interval": [0.9, 1.0]}]
    text = render()
    assert "The interval of accuracy collapses to a single value for m" in text and "[0.9000, 1.0000] for m" in text
    record = {e["column"]: e for e in results["7"]["metrics"]["column_treatment"]}
    record["const"]["missing_cells"] = 2  # a constant number column with blanks: the mean of 7s fills them with 7
    text = render()
    assert "Column `const` holds one value on every row (the blanks of `const` filled with that value, and no " \
           "missing indicator added) and tells the model nothing." in text
    for entry in results["7"]["metrics"]["column_treatment"]:  # every kept column complete; 2 columns dropped
        if entry["treatment"] != "dropped":
            entry["missing_cells"] = 0
    text = render()
    assert "2 dropped; no cell of a kept column was missing." in text and "no cell was missing" not in text
    test_rows = results["7"]["metrics"]["split"]["test"]
    assert f"for m: every one of the {test_rows} test rows was right, so every resample scored the same, at any " \
           "number of test rows; that is not certainty: the exact" in text and "how few test rows" not in text
