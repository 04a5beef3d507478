"""The benchmark runs in quick mode and prints every column (timings themselves are not tested)."""

import json

import numpy as np

import nnlab
from nnlab.cli import main


def test_bench_quick_prints_every_column(capsys, tmp_path):
    assert main(["bench", "--quick", "--no-memory", "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    for word in ("nnlab fit", "nnlab handout loop", "scikit-learn MLPClassifier", "samples/s", "GEMMs of one step",
                 "GEMM-only limit", "nnlab fit reaches", "Where nnlab fit's step goes", "fit / scikit-learn",
                 "handout loop / PyTorch", "inference / PyTorch", "Inference", "digits", "mnist", "BLAS"):
        assert word in out
    results = json.loads((tmp_path / "b.json").read_text())
    for workload in results["workloads"].values():
        goals = workload["goals"]
        assert set(goals) == {"handout loop / PyTorch", "handout GEMM-only limit / PyTorch", "fit / PyTorch",
                              "fit / scikit-learn", "GEMM-only limit / scikit-learn", "inference / PyTorch",
                              "fit / GEMM-only limit"}
        assert all(v is None or (v["paired_median"] > 0 and v["min"] <= v["paired_median"] <= v["max"])
                   for v in goals.values())


def test_a_ratio_is_inconclusive_when_its_two_medians_disagree():
    """Paired median above 1 but ratio of medians below 1 (the review's digits inference case): no verdict."""
    from nnlab.bench import _paired, inconclusive, ratio_text

    disagree = _paired([2.2, 1.1, 0.5], [2.0, 1.0, 3.0])  # ratios 1.1, 1.1, 0.17; medians 1.1 / 2.0
    assert disagree["paired_median"] > 1 > disagree["of_medians"] and inconclusive(disagree)
    assert not inconclusive(_paired([2.2, 1.1, 3.3], [2.0, 1.0, 3.0]))
    planted = {"paired_median": 1.19, "min": 0.6, "max": 1.3, "of_medians": 0.88}
    assert inconclusive(planted) and ratio_text(planted).startswith("inconclusive (paired 1.19x, range 0.60x - 1.30x")
    steady = {"paired_median": 4.37, "min": 3.9, "max": 4.8, "of_medians": 3.48}
    assert not inconclusive(steady) and ratio_text(steady).startswith("4.37x (")
    assert ratio_text(None) == "n/a"
    assert "medians only" in ratio_text({"paired_median": None, "min": None, "max": None, "of_medians": 2.0})


def test_gemm_products_count_the_steps_flops():
    """Forward and dW for every layer, dx above the first: 2 B (64*64*2 + 64*10*3) for 64-64-10."""
    from nnlab.bench import BATCH, gemm_products

    products, flops = gemm_products([64, 64, 10])
    assert len(products) == 5
    assert flops == 2 * BATCH * (64 * 64 * 2 + 64 * 10 * 3)
    shapes = sorted(p().shape for p in products)
    assert shapes == sorted([(BATCH, 64), (64, 64), (BATCH, 10), (10, 64), (BATCH, 64)])
    # the handout's MLP.backward returns dx of the first layer too: one more (BATCH, 64) product
    products, flops_handout = gemm_products([64, 64, 10], first_dx=True)
    assert len(products) == 6 and flops_handout == flops + 2 * BATCH * 64 * 64
    assert sorted(p().shape for p in products) == sorted(shapes + [(BATCH, 64)])


def test_float32_training_tracks_float64():
    """The float32 speed path follows the float64 run: same init, same batches, losses within 1e-3 relative."""
    X, y = nnlab.data.load_digits()
    X = X / 16.0
    curves = {}
    for dtype in (np.float64, np.float32):
        net = nnlab.make_mlp([64, 64, 10], rng=np.random.default_rng(0)).astype(dtype)
        hist = nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.05), X, y,
                         epochs=5, batch_size=128, rng=np.random.default_rng(1))
        curves[dtype] = np.array(hist.epoch_loss)
    np.testing.assert_allclose(curves[np.float32], curves[np.float64], rtol=1e-3)


def test_the_main_tables_keep_the_tabular_cnn_and_runs_sections(tmp_path):
    """`nnlab bench --markdown F` rewrites its own tables; the sections `--tabular`, `--cnn` and `--runs` wrote stay."""
    from nnlab.bench import TABULAR_MARK, write_main, write_section
    from nnlab.bench_cnn import MARK
    from nnlab.bench_runs import MARK as RUNS_MARK

    doc = tmp_path / "benchmarks.md"
    write_main(doc, "nnlab bench", "old main table\n")
    write_section(doc, TABULAR_MARK, f"{TABULAR_MARK}\ntabular rows\n{TABULAR_MARK}\n")
    write_section(doc, MARK, f"{MARK}\ncnn rows\n{MARK}\n")
    write_section(doc, RUNS_MARK, f"{RUNS_MARK}\nruns rows\n{RUNS_MARK}\n")
    write_main(doc, "nnlab bench --repeats 7", "new main table\n")
    text = doc.read_text()
    assert "old main table" not in text and "new main table" in text and "`nnlab bench --repeats 7`" in text
    assert text.index("new main table") < text.index("tabular rows") < text.index("cnn rows") < text.index("runs rows")
    assert text.count(RUNS_MARK) == 2
    assert text.count(TABULAR_MARK) == 2 and text.count(MARK) == 2
    # a hand-edited file whose last section lost its final newline keeps that section too
    doc.write_text(doc.read_text().rstrip("\n"))
    write_main(doc, "nnlab bench", "third main table\n")
    assert doc.read_text().count(MARK) == 2 and "cnn rows" in doc.read_text()


def test_the_gemm_only_limit_runs_the_short_last_batch_as_the_contenders_do(monkeypatch):
    """1797 digits rows = 14 batches of 128 and one of 5: the limit times exactly those products."""
    import nnlab.bench as bench

    _, flops_short = bench.gemm_products([64, 64, 10], rows=5)
    assert flops_short * bench.BATCH == 5 * bench.gemm_products([64, 64, 10])[1]
    calls, original = [], bench.gemm_products

    def counting(*args, rows=bench.BATCH, **kwargs):
        products, flops = original(*args, rows=rows, **kwargs)
        return [lambda p=p: calls.append(rows) or p() for p in products], flops

    monkeypatch.setattr(bench, "gemm_products", counting)
    bench.gemm_only(np.zeros((14 * bench.BATCH + 5, 64), np.float32), None, [64, 64, 10])(1)
    assert calls.count(bench.BATCH) == 14 * 5 and calls.count(5) == 5


def test_a_benchmark_records_the_commit_it_measured(tmp_path):
    """The commit of the package's folder, marked when its files differ from it; nothing outside a checkout."""
    import subprocess

    from nnlab.bench import source_revision

    package = tmp_path / "repo" / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    assert source_revision(package) is None  # not a repository

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t",
                               *args], capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    assert source_revision(package) is None  # a repository, but the package's files are not in it
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "--short", "HEAD")
    assert source_revision(package) == head
    (tmp_path / "repo" / "elsewhere.txt").write_text("outside the package\n")
    assert source_revision(package) == head  # a change outside the package's folder is not its change
    (package / "__init__.py").write_text("x = 2\n")
    assert source_revision(package) == f"{head} with uncommitted changes"
