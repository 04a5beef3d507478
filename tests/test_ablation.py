"""The ablation stage: rows, leak-free selection, paired statistics, reproducible metrics, its report section."""

import json

import numpy as np
import pytest
from scipy import stats

from nnlab.cli import main
from nnlab.report import context, sections, verdicts
from nnlab.report.format import pct
from nnlab.stages import ablation
from nnlab.stages.ablation import ROWS, Config, Row, base_spec, choose, paired_change, rows_of
from nnlab.stages.ablation_timing import write_times
from nnlab.stages.common import write_metrics


@pytest.fixture(scope="module")
def runs(quick_runs, tmp_path_factory):
    """The quick study's folder from the session's run of every stage (one process), and a run on two processes."""
    out = tmp_path_factory.mktemp("ablation")
    write_metrics(ablation.run(Config().quick(), out, jobs=2), out)
    return {"one": quick_runs[1] / "stageablation", "two": out}


def test_cli_runs_the_quick_ablation(tmp_path, capsys):
    assert main(["run", "ablation", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "stageablation"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"digits", "mnist"}
    assert (folder / "ablation_mnist.png").read_bytes()[:4] == b"\x89PNG"
    assert "mnist: + longer" in capsys.readouterr().out


def test_metrics_are_byte_identical_across_runs_and_worker_counts(runs):
    one, two = (runs[k] / "metrics.json" for k in ("one", "two"))
    assert one.read_bytes() == two.read_bytes()
    text = one.read_text()
    assert "seconds" not in text  # measured times live in times.json, never in metrics.json
    times = json.loads((runs["one"] / "times.json").read_text())
    assert set(times["mnist"]) == {row.key for row in ROWS}


def test_every_row_is_recorded_with_its_paired_change(runs):
    m = json.loads((runs["one"] / "metrics.json").read_text())["metrics"]
    for d in m.values():
        assert [r["key"] for r in d["rows"]] == [row.key for row in ROWS]
        assert d["rows"][0]["change"] is None
        for before, now in zip(d["rows"], d["rows"][1:]):
            change = paired_change(now["test_accuracy"]["values"], before["test_accuracy"]["values"])
            assert now["change"] == pytest.approx(change, nan_ok=True)
        assert d["best_mean"] == max(r["test_accuracy"]["mean"] for r in d["rows"])
        assert d["meets_goal"] == (d["best_mean"] >= d["goal"])
        assert d["shortfall"] == pytest.approx(max(0.0, d["goal"] - d["best_mean"]))
        assert d["rows"][-1]["epochs"] == 3 * d["rows"][0]["epochs"]
        assert all(r["work_gmac"] > 0 for r in d["rows"])


def test_tuned_rows_choose_from_their_grids_on_every_split(runs):
    m = json.loads((runs["one"] / "metrics.json").read_text())["metrics"]
    for name, d in m.items():
        rows = {r["key"]: r for r in d["rows"]}
        for key in ("adamw", "dropout"):
            r = rows[key]
            assert len(r["chosen"]) == len(r["selection"]) == d["splits"] and r["candidates"] == 2
            for chosen, scores in zip(r["chosen"], r["selection"]):
                (field, value), = chosen.items()
                assert value == r["tuned"][field][choose(scores)]
        # a single candidate is no choice: the digits' shift is fixed, MNIST's is chosen
        assert (rows["shift"]["selection"] == []) == (name == "digits")
        assert rows["batchnorm"]["selection"] == [] and rows["batchnorm"]["chosen"] == [{}] * d["splits"]


def test_selection_never_sees_a_test_image():
    y = np.repeat(np.arange(10), 60)
    for seed in range(5):
        fit_rows, val_rows = rows_of(y, seed, "select")
        train_rows, test_rows = rows_of(y, seed, "test")
        assert not set(fit_rows) & set(test_rows) and not set(val_rows) & set(test_rows)
        assert set(fit_rows) | set(val_rows) == set(train_rows)
        assert not set(fit_rows) & set(val_rows)


def test_paired_change_is_the_paired_t_test():
    now, before = np.array([0.91, 0.93, 0.92, 0.95, 0.90]), np.array([0.90, 0.90, 0.91, 0.92, 0.91])
    c = paired_change(now, before)
    ref = stats.ttest_rel(now, before)
    assert c["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert c["beyond_noise"] == (ref.pvalue < 0.05)
    assert c["mean"] == pytest.approx(0.014) and c["wins"] == 4 and c["losses"] == 1
    assert c["se"] == pytest.approx(np.std(now - before, ddof=1) / np.sqrt(5))
    same = paired_change(before + 0.01, before)  # the same gain on every split: no spread, beyond any noise
    assert same["t"] is None and same["se"] == 0 and same["beyond_noise"]
    assert not paired_change(before, before)["beyond_noise"]


def test_choose_breaks_ties_by_loss_then_order():
    assert choose([{"accuracy": 0.9, "loss": 0.5}, {"accuracy": 0.9, "loss": 0.4}]) == 1
    assert choose([{"accuracy": 0.9, "loss": 0.4}, {"accuracy": 0.9, "loss": 0.4}]) == 0
    assert choose([{"accuracy": 0.8, "loss": 0.1}, {"accuracy": 0.9, "loss": 0.9}]) == 1


def test_rows_add_one_thing_each():
    spec = base_spec("mnist", Config())
    assert (spec.hidden, spec.optimizer, spec.lr, spec.batch) == ((64,), "sgd", 0.01, 128)  # the handout's
    expected = {"adam": {"optimizer", "lr"}, "width": {"hidden"}, "adamw": {"optimizer", "weight_decay"},
                "dropout": {"dropout"}, "batchnorm": {"norm"}, "shift": {"shift"}, "depth": {"hidden"},
                "cosine": {"schedule"}, "longer": {"epochs"}}
    for row in ROWS[1:]:
        options = row.candidates(spec, "mnist")
        changed = {k for k in spec.as_dict() if getattr(options[-1], k) != getattr(spec, k)}
        assert changed == expected[row.key], row.key
        spec = options[0]
    assert Row("x", "x", grid={"shift": {"digits": (1,), "mnist": (1, 2)}}).tuned("digits") == []


def _section(result, docs):
    values = context.ablation({"ablation": result}, docs)
    return sections.render_section("ablation", values, "docs/figures", "ablation", result["figures"])


def test_report_section_reads_its_numbers_from_the_metrics(runs, tmp_path):
    result = json.loads((runs["one"] / "metrics.json").read_text())
    text = _section(result, tmp_path)  # no times file in tmp_path
    assert "which has not been written yet" in " ".join(text.split()) and "CPU s per training" not in text
    for name, d in result["metrics"].items():
        assert f"### {name} ({d['n_images']} images" in text
        for r in d["rows"]:
            assert f"- **{r['key']}**:" in text
            assert pct(r["test_accuracy"]["mean"]) in text
        best = next(r for r in d["rows"] if r["key"] == d["best"])
        _, low, high = verdicts.mean_interval(best["test_accuracy"]["values"])
        wording = {"above": "meets the goal", "below": "misses the goal", "tie": "is not shown to meet the goal"}
        assert f"{wording[verdicts.against(low, high, d['goal'])]} of {pct(d['goal'], 1)}" in " ".join(text.split())
        assert (f"so its score is optimistic. Its mean, {pct(d['best_mean'])} (95% Student-t interval over the "
                f"{d['splits']} splits {pct(max(low, 0))} to {pct(min(high, 1))}") in " ".join(text.split())
    assert "None" not in text and "nan" not in text
    record = write_times(tmp_path / "ablation_times.json", jobs=1, out=tmp_path / "run", config=Config().quick())
    assert record["cpu_seconds"].keys() == {"digits", "mnist"} and record["wall_seconds"] > 0
    # the timed run is the same study: its metrics.json equals the untimed one's
    timed_metrics = tmp_path / "run" / "stageablation" / "metrics.json"
    assert timed_metrics.read_text() == (runs["one"] / "metrics.json").read_text()
    timed = " ".join(_section(result, tmp_path).split())
    assert f"took {record['wall_seconds']:.1f} s of wall time on 1 processes" in timed and "| n/a |" not in timed
    assert "python -m nnlab.stages.ablation_timing" in timed
    from nnlab.bench import revision_text

    assert record["revision"] == revision_text() and f"ran {record['revision']}." in timed
    record["config"]["mnist_epochs"] += 1  # times measured for another configuration are not shown
    (tmp_path / "ablation_times.json").write_text(json.dumps(record))
    stale = _section(result, tmp_path)
    assert "written for another configuration" in stale and "CPU s per training" not in stale


def _with_best(result, name, values):
    """A copy of ``result`` whose best row of ``name`` has the given per-split test accuracies."""
    changed = json.loads(json.dumps(result))
    m = changed["metrics"][name]
    best = next(r for r in m["rows"] if r["key"] == m["best"])
    best["test_accuracy"].update(values=values, mean=float(np.mean(values)))
    return changed


def test_the_goal_verdict_follows_the_interval_not_the_mean(runs, tmp_path):
    """A best mean just above the goal with a wide interval is a tie; a tight one well above meets it."""
    result = json.loads((runs["one"] / "metrics.json").read_text())
    name = next(iter(result["metrics"]))
    goal = result["metrics"][name]["goal"]
    splits = result["metrics"][name]["splits"]
    wide = [goal + 0.001 + (0.02 if i % 2 else -0.02) for i in range(splits)]
    text = " ".join(_section(_with_best(result, name, wide), tmp_path).split())
    assert f"is not shown to meet the goal of {pct(goal, 1)}: the interval holds it" in text
    tight = [min(goal + 0.01 + 0.001 * i, 1.0) for i in range(splits)]
    text = " ".join(_section(_with_best(result, name, tight), tmp_path).split())
    assert f"meets the goal of {pct(goal, 1)}: the interval lies above it" in text


def test_an_interval_beyond_100_percent_is_clipped_and_says_so(runs, tmp_path):
    """The review's digits row: 99.15 % over 5 splits, t interval to 100.26 %; the report stops at 100 %."""
    result = json.loads((runs["one"] / "metrics.json").read_text())
    name = next(iter(result["metrics"]))
    splits = result["metrics"][name]["splits"]
    values = [1.0, 0.975] * (splits // 2) + [1.0] * (splits % 2)
    _, low, high = verdicts.mean_interval(values)
    assert high > 1
    text = " ".join(_section(_with_best(result, name, values), tmp_path).split())
    assert (f"{pct(low)} to 100.00%, clipped to the possible range: the t interval runs from {pct(low)} to "
            f"{pct(high)})") in text
    inside = [0.9, 0.91] * (splits // 2) + [0.9] * (splits % 2)
    assert "clipped" not in " ".join(_section(_with_best(result, name, inside), tmp_path).split())


def test_the_header_says_each_change_is_given_the_rows_above(runs, tmp_path):
    text = " ".join(_section(json.loads((runs["one"] / "metrics.json").read_text()), tmp_path).split())
    assert "each row's change is that component's effect given the rows above it, in this order" in text


def test_tie_breaks_harmful_rows_and_grid_edges_are_counted():
    tied = {"selection": [[{"accuracy": 0.9, "loss": 0.2}, {"accuracy": 0.9, "loss": 0.1}],
                          [{"accuracy": 0.9, "loss": 0.2}, {"accuracy": 0.8, "loss": 0.1}]]}
    assert context._tie_breaks(tied) == 1
    assert context._tie_breaks({"selection": [[], []]}) == 0
    rows = [{"key": "wd", "tuned": {"weight_decay": [0.05, 0.5]}, "chosen": [{"weight_decay": 0.5}] * 5},
            {"key": "mixed", "tuned": {"dropout": [0.1, 0.3]}, "chosen": [{"dropout": 0.1}, {"dropout": 0.3}]},
            {"key": "middle", "tuned": {"lr": [0.1, 0.2, 0.3]}, "chosen": [{"lr": 0.2}] * 3}]
    edges = context._grid_edges(rows)
    assert [(e["row"], e["end"], e["splits"]) for e in edges] == [("wd", "top", 5)]
