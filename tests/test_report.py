"""REPORT.md is rendered from results alone: every value present, nothing typed, config changes reach the text."""

import dataclasses
import json
import re
from pathlib import Path

import jinja2
import pytest

from nnlab import report
from nnlab.errors import NnlabValueError
from nnlab.report import context, format, sections
from nnlab.stages import stage1
from nnlab.stages.runner import run_stage

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDERS = re.compile(r"\{\{|\}\}|\{%|%\}|\bNone\b|\bnan\b|\binf\b|\bn/a\b|Undefined")


@pytest.fixture(scope="module")
def results(quick_runs):
    _, out = quick_runs
    return {sid: json.loads((out / f"stage{sid}" / "metrics.json").read_text()) for sid in report.ORDER
            if (out / f"stage{sid}" / "metrics.json").exists()}


def _stage_sections(text):
    """The generated part of the report (the copied Speed and Robustness sections may quote NaN on purpose)."""
    head, _, tail = text.partition("\n## Speed\n")
    return head + "\n" + tail.partition("\n## What each component buys\n")[2]


def test_whole_report_renders_from_quick_results_without_placeholders(results):
    text = report.render(results, "docs/figures", ROOT / "docs")
    for sid in ("1", "2", "3", "4", "5", "accuracy", "7"):
        assert sid in results
    stage_text = _stage_sections(text)
    found = sorted(set(PLACEHOLDERS.findall(stage_text)))
    assert not found, f"unrendered or missing values in the report: {found}"
    for sid, res in results.items():
        for name in res["figures"].values():
            assert f"stage{sid}/{name}" in text, f"figure {name} of stage {sid} is not in the report"


def test_a_missing_value_is_an_error_not_a_blank(results):
    broken = json.loads(json.dumps(results))
    del broken["1"]["metrics"]["noise"]
    with pytest.raises((jinja2.UndefinedError, KeyError)):
        report.render(broken, "docs/figures", ROOT / "docs")


def test_a_missing_number_is_an_error_not_none(results):
    broken = json.loads(json.dumps(results))
    broken["4"]["metrics"]["gap_to_closed_form"] = None
    with pytest.raises(NnlabValueError, match="expected a number"):
        report.render(broken, "docs/figures", ROOT / "docs")


def test_filters_refuse_what_is_not_a_finite_number():
    for bad in (None, float("nan"), float("inf"), "0.5", True):
        with pytest.raises(NnlabValueError):
            format.g(bad)
    assert format.g(0.000123456) == "1.235e-04" and format.pct(0.98254) == "98.25%"


def test_every_template_is_used():
    used = {"header", "speed", "robustness", "closing"} | {name for _, name, _ in sections.SECTIONS}
    files = {p.name.removesuffix(".md.j2") for p in sections.TEMPLATES.glob("*.md.j2")}
    assert files == used


def test_changing_a_config_value_changes_the_text(tmp_path, results):
    base = stage1.Config().quick()
    texts = {}
    for epochs in (base.epochs, 150):
        run = run_stage("1", dataclasses.replace(base, epochs=epochs), tmp_path / str(epochs))
        res = json.loads((tmp_path / str(epochs) / "stage1" / "metrics.json").read_text())
        texts[epochs] = sections.render_section("stage1", context.stage1({**results, "1": res}), "f", "1",
                                              res["figures"])
        assert run.result.config["epochs"] == epochs
    assert f"run for {base.epochs} steps" in texts[base.epochs] and "run for 150 steps" in texts[150]
    assert "150" not in texts[base.epochs].replace("0.150", "")


ALLOWED = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\b[A-Za-z_]+\d+\b|\b[0-2](?!\d|[.,]\d)|Stage \d\.\d|Stages? \d( to \d)?"
                     r"|nnlab run \d|float(32|64)|8×8|28×28|\[0, 1\]|100%", re.S)


def typed_numbers(template_text: str) -> list[str]:
    """The numbers a template types into its prose or code spans, outside ``{{ }}`` and ``{% %}``.

    Allowed: the maths it derives (0, 1, 2 as coefficients), names that end in a digit
    (``lin1``, ``W2``), stage numbers and fixed facts of the data (8×8, [0, 1], 100%).
    """
    return re.findall(r"\d+(?:\.\d+)?", ALLOWED.sub("", template_text))


def test_the_typed_number_check_catches_levels_and_code_spans():
    assert typed_numbers("a 95% interval") == ["95"]
    assert typed_numbers("`Linear(3, 1)` and `Linear({{ n }}, 1)`") == ["3"]
    assert typed_numbers("within 1.5 of `lin1.W` at 2πx, `W2 @ W1`, {{ x|pct(0) }}") == ["1.5"]


def test_no_number_is_typed_into_a_template():
    """Digits in a template's prose are only the maths it derives (indices, 0, 1, 2 in formulas), never results."""
    found = {path.name: typed_numbers(path.read_text()) for path in sections.TEMPLATES.glob("*.md.j2")}
    assert not any(found.values()), f"templates type numbers into their prose: {found}"


def test_stage3_capacity_conclusion_is_written_per_activation_from_the_bounded_fit(results):
    """Each activation gets the sentence its own bounded number supports, whichever way the numbers fall."""
    def text(bounded):
        res = json.loads(json.dumps(results))
        for k, value in bounded.items():
            run = res["3"]["metrics"]["runs"][k]
            run["bounded_span_error_long"] = value * run["truth_mse_long"]
        return sections.render_section("stage3", context.stage3(res), "f", "3", res["3"]["figures"])

    short_output = "has not\neven fitted the output layer"
    hidden_hold = "the output layer is not\nwhat holds this fit back"
    mixed = text({"relu": 0.1, "tanh": 0.9})
    relu_part, _, tanh_part = mixed.partition("**tanh.**")
    assert short_output in relu_part and hidden_hold not in relu_part
    assert hidden_hold in tanh_part and short_output not in tanh_part
    flipped = text({"relu": 0.9, "tanh": 0.1})
    relu_part, _, tanh_part = flipped.partition("**tanh.**")
    assert hidden_hold in relu_part and short_output in tanh_part


def test_closing_quotes_the_ablations_depth_and_regularisation_rows_with_their_noise_verdicts(results):
    assert "ablation" in results
    text = sections.render_section("closing", context.closing(results))
    rows = {r["key"]: r for r in results["ablation"]["metrics"]["digits"]["rows"]}
    depth = rows["depth"]["change"]
    assert f"{100 * depth['mean']:+.2f} percentage points (one standard error {100 * depth['se']:.2f}" in text
    for key in ("depth", "adamw", "dropout"):
        assert rows[key]["label"] in text
    assert "stable" not in text
    for t, beyond, words in ((5.0, True, "beyond the noise: |t| 5"), (0.5, False, "within the noise: |t| 0.5")):
        other = json.loads(json.dumps(results))
        for r in other["ablation"]["metrics"]["digits"]["rows"]:
            if r["key"] == "depth":
                r["change"].update(t=t, beyond_noise=beyond)
        line = next(line for line in sections.render_section("closing", context.closing(other)).splitlines()
                    if "on digits (hidden" in line)
        assert words in line.partition("on digits (hidden")[0].rpartition("is ")[2]


def test_closing_says_at_which_lr_the_full_batch_ran(results):
    text = sections.render_section("closing", context.closing(results))
    assert f"both at lr {results['5']['metrics']['handout']['lr']:g} (a larger full-batch lr was" in text
    other = json.loads(json.dumps(results))
    other["5"]["metrics"]["handout"]["full_batch"]["lr"] = 0.5
    assert "and 0.5. Each step" in sections.render_section("closing", context.closing(other)).replace("\n", " ")
