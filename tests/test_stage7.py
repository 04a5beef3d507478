"""Stage 7: the protocol on a bundled set, leak-freedom, and the CSV path's good and bad cases."""

import numpy as np
import pytest

from nnlab.cli import main
from nnlab.data.tabular import CSVError, read_csv_table
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
    assert len(m["search"]) == 3


def test_search_never_sees_test_rows(monkeypatch, tmp_path):
    seen = []
    real = stage7.cross_validate

    def spy(spec, table, rows, folds, seed):
        seen.append(np.array(rows))
        return real(spec, table, rows, folds, seed)

    monkeypatch.setattr(stage7, "cross_validate", spy)
    config = stage7.Config().quick()
    stage7.run(config, tmp_path)
    _, _, test = stage7.split_rows(stage7.load_table(config), config.seed)
    assert seen and all(np.intersect1d(rows, test).size == 0 for rows in seen)


def test_split_is_stratified_and_fixed_by_seed():
    table = stage7.load_table(stage7.Config())
    a = stage7.split_rows(table, 1)
    b = stage7.split_rows(table, 1)
    c = stage7.split_rows(table, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    frac = table.y[a[2]].mean()
    assert abs(frac - table.y.mean()) < 0.02


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _good_rows(n=30, with_text=False):
    rng = np.random.default_rng(0)
    lines = ["x1,x2,kind,label" if with_text else "x1,x2,label"]
    for i in range(n):
        a, b = rng.normal(size=2)
        label = "yes" if a + b > 0 else "no"
        kind = ["red", "blue"][i % 2]
        lines.append(f"{a:.3f},{b:.3f},{kind},{label}" if with_text else f"{a:.3f},{b:.3f},{label}")
    return "\n".join(lines) + "\n"


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, *capsys.readouterr()


def test_good_csv_classification(tmp_path, capsys):
    path = _write(tmp_path, _good_rows(40))
    code, out, _ = _cli(capsys, "run", "7", "--csv", str(path), "--target", "label", "--quick",
                        "--out", str(tmp_path / "out"))
    assert code == 0 and "classification" in out and (tmp_path / "out/stage7/metrics.json").exists()


def test_good_csv_with_categorical_auto(tmp_path):
    table = read_csv_table(_write(tmp_path, _good_rows(20, with_text=True)), "label", categorical="auto")
    assert table.feature_names == ["x1", "x2", "kind=blue", "kind=red"]
    assert table.classes == ["no", "yes"]


def test_good_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = ["a,b,price"] + [f"{a:.3f},{b:.3f},{3 * a - b + 0.1 * rng.normal():.4f}"
                            for a, b in rng.normal(size=(40, 2))]
    path = _write(tmp_path, "\n".join(rows))
    code, out, _ = _cli(capsys, "run", "7", "--csv", str(path), "--target", "price", "--quick",
                        "--out", str(tmp_path / "out"))
    assert code == 0 and "regression" in out and "rmse" in out


def test_impute_mean(tmp_path):
    lines = _good_rows(20).splitlines()
    lines[1] = "," + lines[1].split(",", 1)[1]  # blank x1 on the first data line
    path = _write(tmp_path, "\n".join(lines))
    with pytest.raises(CSVError, match=r"1 missing value\(s\) in column 'x1' \(1: line 2\).*--impute mean"):
        read_csv_table(path, "label")
    table = read_csv_table(path, "label", impute="mean")
    assert np.isnan(table.X).sum() == 1


@pytest.mark.parametrize(
    "text, args, fragment",
    [
        (None, [], "not found"),
        ("a,b\n1,2\n3,4\n", ["--target", "zzz"], "target column 'zzz' not found; the columns are: a, b"),
        ("a,b,y\n1,2,0\n1,oops,1\n", [], "non-numeric value 'oops' in column 'b', line 3"),
        ("a,b,y\n1,,0\n2,NA,1\n3,4,0\n", [], "2 missing value(s) in column 'b'"),
        ("a,y\n1,cat\n2,cat\n3,cat\n", [], "single class"),
        ("a,y\n1,0\n2,1\n", ["--folds", "5"], "too few"),
        ("", [], "empty"),
        ("a,b,y\n1,2\n", [], "line 2 has 2 fields"),
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


def test_regression_task_needs_numeric_target(tmp_path):
    with pytest.raises(CSVError, match="numeric target"):
        read_csv_table(_write(tmp_path, "a,y\n1,x\n2,z\n"), "y", task="regression")
