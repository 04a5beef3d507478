"""What each stage's template needs beyond its ``metrics.json``: derived numbers and computed words.

Each ``stageN(results)`` returns the values one template renders.  Comparative words
("better", "falls", "a tie") are decided here from the numbers, so the prose stays true
when a number changes; the templates only format.  ``results`` maps a stage id to the
contents of its ``metrics.json`` (``config``, ``metrics``, ``figures``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from nnlab.data.column_record import constant_filled
from nnlab.report import verdicts
from nnlab.stages.accuracy import CONTROL


def _base(results: dict, sid: str) -> dict:
    r = results[sid]
    return {"c": r["config"], "m": r["metrics"]}


def _monotone(values) -> str:
    """``"falls"``, ``"rises"`` or ``"is not monotone"`` for a sequence of numbers."""
    steps = np.diff(np.asarray(values, dtype=float))
    if np.all(steps < 0):
        return "falls"
    if np.all(steps > 0):
        return "rises"
    return "is not monotone"


def stage1(results: dict) -> dict:
    """Stage 1: the sweep against the bound, the noise against its distribution."""
    ctx = _base(results, "1")
    m, c = ctx["m"], ctx["c"]
    bound = m["lr_critical_theory"]
    sweep = [(float(lr), s) for lr, s in m["sweep"].items()]
    mismatched = [lr for lr, s in sweep if s["diverged"] != (lr > bound)]
    noise = m["noise"]
    ctx.update(
        sweep_rows=[(f"{lr:g}", s["final_loss"], "yes" if s["diverged"] else "no") for lr, s in sweep],
        sweep_consistent=not mismatched, sweep_mismatched=[f"{lr:g}" for lr in mismatched],
        edge_gap=abs(m["lr_critical_measured"] / bound - 1),
        noise_variance=c["noise"] ** 2,
        noise_side="below" if noise["noise_mean_square"] < c["noise"] ** 2 else "above",
        final_gap=m["loss_final"] - m["mse_ols"],
    )
    return ctx


def stage2(results: dict) -> dict:
    """Stage 2: monotone descent, the planted-bug scale, the collapse against Stage 1."""
    ctx = _base(results, "2")
    m = ctx["m"]
    ctx.update(
        fd_rows=sorted(m["finite_difference"]["errors"].items()),
        stage1=results["1"]["metrics"] if "1" in results else None,
        gap_to_optimum=m["loss_final"] - m["mse_ols"],
        rise_in_ulps=m["largest_rise"] / np.spacing(m["loss_final"]),
        rises_are_rounding=m["largest_rise"] <= 64 * np.spacing(m["loss_final"]),
        collapse_gap_w=abs(m["w_collapsed"] - m["w_ols"]), collapse_gap_b=abs(m["b_collapsed"] - m["b_ols"]),
    )
    return ctx


def _capacity(run: dict, adam: dict) -> dict:
    """Whose is a Stage 3 run's misfit: the output layer's (its units allow far better), or the hidden units'.

    "Far" is a factor of 2 below the run's error against the sine.  The output layer is held
    to the bound the stage set (a multiple of the trained layer's norm): the unbounded fit on
    nearly collinear units needs weights no training here produces, so it settles nothing.
    """
    return {"output_layer_short": run["bounded_span_error_long"] < run["truth_mse_long"] / 2,
            "adam_far_better": adam["truth_mse_long"] < run["truth_mse_long"] / 2,
            "adam_within_bound": adam["output_weight_norm"] <= run["span_weight_bound"],
            "unbounded_far_better": run["span_error_long"] < run["bounded_span_error_long"] / 2}


#: A part of Stage 3's bias/variance split "dominates" when its corrected estimate is this many times the other's.
DOMINANCE_FACTOR = 2


def _variance_split(m: dict, names: dict) -> dict:
    """Stage 3's bias/variance split, per optimiser: its table rows and, per activation, which part dominates.

    With K draws the split is biased both ways: the squared bias of the mean of K fits overstates the
    true squared bias by the variance of that mean, about ``variance / (K - 1)``, and the variance
    around the mean of K fits (ddof 0) understates one fit's variance by ``(K - 1) / K``.  Which part
    dominates is therefore judged on the corrected estimates ``bias_sq - variance / (K - 1)`` (0 at
    least) and ``variance * K / (K - 1)``: a part dominates when it is at least twice the other.
    ``holds`` counts the draws after the first (the stage's own run) in which the activation closer to
    the sine in the first is closer again.
    """
    v = m["variance"]
    K = v["draws"]
    split = {}
    for opt, label in (("sgd", "the handout's step"), ("adam", "Adam")):
        parts = v[opt]
        per_draw = {k: s["mse_per_draw"] for k, s in parts.items()}
        closer = min(per_draw, key=lambda k: per_draw[k][0])
        closest_in = {k: [all(errors[d] < per_draw[o][d] for o in per_draw if o != k) for d in range(K)]
                      for k, errors in per_draw.items()}
        share = {k: s["bias_sq"] / s["mean_mse"] for k, s in parts.items()}
        corrected = {k: (max(s["bias_sq"] - s["variance"] / (K - 1), 0.0), s["variance"] * K / (K - 1))
                     for k, s in parts.items()}
        corrected_share = {k: b / (b + w) if b + w else 0.0 for k, (b, w) in corrected.items()}
        split[opt] = {
            "label": label, "closer": names[closer], "holds": sum(closest_in[closer][1:]), "bias_share": share,
            "corrected_share": corrected_share,
            "spread": {k: (min(errors), max(errors)) for k, errors in per_draw.items()},
            "sorted_errors": {k: sorted(errors) for k, errors in per_draw.items()},
            "dominant": {k: "bias dominates" if b >= DOMINANCE_FACTOR * w else "variance dominates"
                         if w >= DOMINANCE_FACTOR * b
                         else "neither part dominates" for k, (b, w) in corrected.items()},
            "rows": [(f"{label}, {v['epochs'][opt]} epochs", names[k], s["bias_sq"], s["variance"],
                      s["bias_sq"] + s["variance"], s["mean_mse"], share[k], corrected_share[k], sum(closest_in[k]))
                     for k, s in parts.items()],
        }
    return split


def stage3(results: dict) -> dict:
    """Stage 3: which activation fits better under each optimiser, plateaus, the noise test on every run."""
    ctx = _base(results, "3")
    m = ctx["m"]
    runs, adam = m["runs"], m["adam"]
    names = {"relu": "ReLU", "tanh": "tanh"}
    noise = m["noise_mean_square"]

    def better(group, key):
        return names[min(group, key=lambda k: group[k][key])]

    def times(a, b):
        return f"{a / b:.2g} times lower than" if a >= b else f"{b / a:.2g} times higher than"

    order = list(runs)
    # every trained network, the handout's and Adam's, goes through the same noise and overfitting tests
    every = ({f"{names[k]} with the handout's step": r for k, r in runs.items()}
             | {f"{names[k]} with Adam": a for k, a in adam.items()})
    by_truth = sorted(order, key=lambda k: adam[k]["truth_mse_long"])
    ctx.update(
        order=order, names=names, better_short=better(runs, "truth_mse_short"),
        better_long=better(runs, "truth_mse_long"), better_adam=better(adam, "truth_mse_long"),
        adam_ratio=adam[by_truth[-1]]["truth_mse_long"] / adam[by_truth[0]]["truth_mse_long"],
        run_rows=[(names[k], runs[k]["train_mse_short"], runs[k]["truth_mse_short"], runs[k]["train_mse_long"],
                   runs[k]["truth_mse_long"]) for k in order],
        below_noise=[name for name, r in every.items() if r["train_mse_long"] < noise],
        below_noise_ratio={name: r["train_mse_long"] / noise for name, r in every.items()
                           if r["train_mse_long"] < noise},
        handout_below_noise=[names[k] for k, r in runs.items() if r["train_mse_long"] < noise],
        truth_grows=[names[k] for k in order if runs[k]["truth_mse_long"] > runs[k]["truth_mse_short"]],
        variance_share={k: r["truth_mse_long"] / m["sine_variance"] for k, r in runs.items()},
        line_share=m["line_mse"] / m["sine_variance"],
        above_noise={k: r["train_mse_long"] / noise for k, r in runs.items()},
        adam_above_noise={k: a["train_mse_long"] / noise for k, a in adam.items()},
        adam_vs_sgd={k: times(runs[k]["truth_mse_long"], a["truth_mse_long"]) for k, a in adam.items()},
        longer={k: {"train": verdicts.trend(r["train_mse_short"], r["train_mse_long"]),
                    "truth": verdicts.trend(r["truth_mse_short"], r["truth_mse_long"]),
                    "change": verdicts.relative_change(r["train_mse_short"], r["train_mse_long"])}
                for k, r in runs.items()},
        plateau=verdicts.PLATEAU,
        as_line=[names[k] for k in order
                 if abs(verdicts.relative_change(m["line_mse"], runs[k]["truth_mse_long"])) < verdicts.PLATEAU],
        adam_better=all(adam[k]["truth_mse_long"] < runs[k]["truth_mse_long"] for k in order),
        capacity={k: _capacity(runs[k], adam[k]) for k in order},
        variance_split=_variance_split(m, names), dominance_factor=DOMINANCE_FACTOR,
        init_is_line=[names[k] for k in order if math.isclose(runs[k]["span_error_init"], m["line_mse"],
                                                               rel_tol=1e-6)],
        kinks_at_zero_is_line=math.isclose(m["kinks_at_zero_span_error"], m["line_mse"], rel_tol=1e-6),
    )
    ctx["still_descending"] = [names[k] for k in order if ctx["longer"][k]["train"] == "falls"]
    ctx["stalled"] = [names[k] for k in order if ctx["longer"][k]["train"] == "stalls"]
    return ctx


def stage4(results: dict) -> dict:
    """Stage 4: labelled GD and exact weights, single weights against the norm, and why."""
    ctx = _base(results, "4")
    m, c = ctx["m"], ctx["c"]
    names = m["features"]
    sweep = m["sweep"]
    lams = list(sweep)
    exact = np.array([s["closed_form_W"] for s in sweep.values()])
    cf = m["closed_form"]["W_std"]
    exact_rank = sorted(range(len(names)), key=lambda i: -abs(cf[i]))
    gd_rank = [x["feature"] for x in m["ranking"]]
    growing = []
    for j, name in enumerate(names):
        mags = np.abs(exact[:, j])
        rises = [(lams[k - 1], lams[k]) for k in range(1, len(lams)) if mags[k] > mags[k - 1]]
        if rises:
            growing.append({"feature": name, "rises": [f"from λ = {a} to {b}" for a, b in rises],
                            "magnitudes": mags.tolist()})
    pd = m["principal_directions"]
    flat = np.array(pd["vectors"][0])
    top2 = sorted(np.argsort(-np.abs(flat))[:2])
    pair = [names[k] for k in top2]
    pair_opposite = bool(flat[top2[0]] * flat[top2[1]] < 0)
    loo = {lam: s["leave_one_out"] for lam, s in sweep.items()}
    best_loo = min(loo, key=lambda lam: loo[lam]["mse"])
    corr = np.array(m["feature_correlation"])
    ages = (m["feature_min"][names.index("age")], m["feature_max"][names.index("age")])
    A, B = m["predictions"]["A"], m["predictions"]["B"]
    differs = [names[j] for j in range(len(names)) if A["features"][j] != B["features"][j]]
    ctx.update(
        lam_rows=[(lam, *exact[k], s["closed_form_norm"], s["weight_norm"])
                  for k, (lam, s) in enumerate(sweep.items())],
        fit_rows=[(lam, s["closed_form_fit_mse"], s["closed_form_r2"], s["r2"], s["leave_one_out"]["weight_spread"],
                   s["leave_one_out"]["mse"]) for lam, s in sweep.items()],
        mean_loo_mse=next(iter(loo.values()))["mean_mse"],
        lam_header=["λ", *(f"{n} (exact)" for n in names), "‖w‖ (exact)", "‖w‖ (gradient descent)"],
        worse_than_mean=[lam for lam, v in loo.items() if v["mse"] >= v["mean_mse"]],
        main_shift=loo[f"{c['lam']:g}"]["weight_shift_from_full"], main_norm=sweep[f"{c['lam']:g}"]["closed_form_norm"],
        names=names,
        weight_rows=[(n, m["W_std"][i], cf[i], m["W_orig"][i]) for i, n in enumerate(names)],
        gd_rank=gd_rank, exact_rank=[names[i] for i in exact_rank], same_rank=gd_rank == [names[i] for i in
                                                                                            exact_rank],
        signs={n: "+" if cf[i] >= 0 else "-" for i, n in enumerate(names)},
        lams=lams, exact=exact, norms_exact=[s["closed_form_norm"] for s in sweep.values()],
        norms_gd=[s["weight_norm"] for s in sweep.values()],
        norm_trend=_monotone([s["closed_form_norm"] for s in sweep.values()]),
        first_norm_step=_monotone([s["closed_form_norm"] for s in list(sweep.values())[:2]]),
        growing=growing, flat=flat.tolist(), flat_pair=pair, flat_pair_opposite=pair_opposite,
        pair_changes=[{"feature": names[k], "before": abs(exact[0, k]), "after": abs(exact[1, k]),
                       "trend": "grows" if abs(exact[1, k]) > abs(exact[0, k]) else "falls"} for k in top2],
        kept={lam: pd["kept"][lam] for lam in lams},
        r2_trend=_monotone([s["closed_form_r2"] for s in sweep.values()]),
        spread_trend=_monotone([s["leave_one_out"]["weight_spread"] for s in sweep.values()]),
        loo=loo, best_loo=best_loo,
        corr_util_late=corr[names.index("utilization"), names.index("late_payments")],
        corr_age_late=corr[names.index("age"), names.index("late_payments")],
        lr_share=c["lr"] / m["lr_bound"], ages=ages, differs=differs,
        age_gap=B["features"][names.index("age")] - A["features"][names.index("age")],
        extrapolates=[who for who, p in m["predictions"].items()
                      if not ages[0] <= p["features"][names.index("age")] <= ages[1]],
        people=list(m["predictions"]),
    )
    return ctx


def stage5(results: dict) -> dict:
    """Stage 5: ties in the confusions, sweep comparisons in images, the like-with-like MNIST comparison."""
    ctx = _base(results, "5")
    m, c = ctx["m"], ctx["c"]
    ho = m["held_out"]
    mc = ho["most_confused"]
    ctx["confusions"] = [f"a true {t} read as {p}" for t, p in mc["pairs"]]
    ctx["handout_minus_test"] = m["handout"]["final_acc_on_training_data"] - ho["test_acc"]
    cm = np.array(ho["confusion"])
    right, total = cm.diagonal(), cm.sum(axis=1)
    by_acc = sorted(range(len(total)), key=lambda k: (right[k] / max(total[k], 1), k))
    worst, next_ = by_acc[0], by_acc[1]
    ctx["classes"] = {"worst": {"label": worst, "right": int(right[worst]), "total": int(total[worst])},
                      "next": {"label": next_, "right": int(right[next_]), "total": int(total[next_])},
                      "gap": verdicts.proportion_gap(right[worst] / total[worst], int(total[worst]),
                                                     right[next_] / total[next_], int(total[next_]))}
    sweeps = sorted(m["sweeps"].items(), key=lambda kv: (kv[1]["kind"], kv[1]["value"]))
    hs = [v for _, v in sweeps if v["kind"] == "H"]
    lrs = [v for _, v in sweeps if v["kind"] == "lr"]
    n_val = hs[0]["validation_rows"]
    counts = [round(v["val_acc_final"] * n_val) for v in hs]
    top, bottom = max(counts), min(counts)
    ctx.update(
        sweep_rows=[(k, v["val_acc_final"], v["val_acc_best"], v["train_loss_final"],
                     v["epochs_to_threshold"] if v["epochs_to_threshold"] is not None else "never")
                    for k, v in sweeps],
        hs=[v["value"] for v in hs], lrs=[v["value"] for v in lrs], n_val=n_val,
        h_counts=counts, h_top=top, h_best=[v["value"] for v, k in zip(hs, counts) if k == top],
        h_spread=verdicts.proportion_gap(top / n_val, n_val, bottom / n_val, n_val), h_bottom=bottom,
        h_loss_trend=_monotone([v["train_loss_final"] for v in hs]),
        h_losses=[v["train_loss_final"] for v in hs], h_loss_max=max(v["train_loss_final"] for v in hs),
        lr_loss_trend=_monotone([v["train_loss_final"] for v in lrs]),
        lr_losses=[v["train_loss_final"] for v in lrs],
        lr_reach=[(v["value"], v["epochs_to_threshold"]) for v in lrs],
        threshold=c["sweep_threshold"],
    )
    if "mnist" in m:
        mn, dg = m["mnist"], m["digits_same_recipe"]
        gap = verdicts.proportion_gap(dg["test_acc"], dg["split_sizes"]["test"], mn["test_acc"],
                                      mn["split_sizes"]["test"])
        ctx.update(mnist_gap=gap["gap"], gap_se=gap["se"], gap_is_noise=gap["within_noise"],
                   noise_se=gap["noise_se"], harder="MNIST" if gap["gap"] > 0 else "the 8×8 digits",
                   both_undertrained=mn["train_acc"] < 1 and dg["train_acc"] < 1)
    return ctx


def accuracy(results: dict) -> dict:
    """The accuracy study: per-split choices with ties, and the verdicts."""
    ctx = _base(results, "accuracy")
    studies = {}
    for name, s in ctx["m"].items():
        table = sorted(s["table"].items(), key=lambda kv: not kv[0].startswith("nnlab"))
        nn = s["table"]["nnlab (recipe chosen per split)"]
        ref = s["table"].get("sklearn MLPClassifier")
        chosen_counts = [sum(sp["chosen"] == i for sp in s["splits"]) for i in range(len(s["candidates"]))]
        split_rows = []
        for sp in s["splits"]:
            chosen = str(sp["chosen"] + 1)
            if sp["tied_with"]:
                chosen += f" (tied with {', '.join(str(i + 1) for i in sp['tied_with'])}; lower validation loss)"
            split_rows.append((sp["seed"], *(sc["accuracy"] for sc in sp["selection"]), chosen,
                               sp["test_scores"]["accuracy"]))
        paired = verdicts.paired(nn["values"], ref["values"]) if ref is not None else {}
        fits = s.get("sklearn_mlp_fits", [])
        cap = {"k": sum(f["at_cap"] for f in fits), "n": len(fits),
               "max_iter": max(f["max_iter"] for f in fits)} if fits else None
        mean, low, high = verdicts.mean_interval(nn["values"])
        target = {"low": low, "high": high, "verdict": verdicts.against(low, high, s["target"])}
        control = None
        if CONTROL in s["table"]:
            row = s["table"][CONTROL]
            control = {"row": row, "shifted_splits": s["shifted_splits"],
                       "shifts": sorted({s["candidate_specs"][sp["chosen"]]["shift"] for sp in s["splits"]} - {0}),
                       "chosen_minus": verdicts.paired(nn["values"], row["values"]),
                       "minus_ref": verdicts.paired(row["values"], ref["values"]) if ref is not None else None}
        studies[name] = {
            "s": s, "nn": nn, "ref": ref, "cap": cap, "chosen_counts": chosen_counts, "paired": paired,
            "target": target,
            "control": control,
            "ties": sum(bool(sp["tied_with"]) for sp in s["splits"]),
            "split_header": ["seed", *(f"validation accuracy of {i + 1}" for i in range(len(s["candidates"]))),
                             "chosen", "test accuracy"],
            "split_rows": split_rows, "split_formats": [None, *(["pct"] * len(s["candidates"])), None, "pct"],
            "model_rows": [(k, v["mean"], v["std"], v["min"], v["max"]) for k, v in table],
        }
    ctx.update(studies=studies, level=verdicts.LEVEL)
    return ctx


def cnn(results: dict) -> dict:
    """The CNN study: the candidates on validation rows, the chosen models on test rows, and the words."""
    from nnlab.stages.cnn import CNN_KEY, MLP_KEY

    ctx = _base(results, "cnn")
    studies = {}
    for name, s in ctx["m"].items():
        cnn_row, mlp_row = s["table"][CNN_KEY], s["table"][MLP_KEY]
        shifts = list(cnn_row["shifted"])
        largest = shifts[-1]
        drop = {key: row["accuracy"]["mean"] - row["shifted"][largest]["mean"]
                for key, row in (("cnn", cnn_row), ("mlp", mlp_row))}
        drops = [[sp["test_scores"]["accuracy"] - sp["test_scores"]["shifted"][largest] for sp in splits]
                 for splits in (s["cnn_splits"], s["mlp_splits"])]
        cm = np.array(s["confusion"])
        off = cm - np.diag(np.diag(cm))
        cands, cands_spec = s["cnn_candidates"], s["cnn_candidate_specs"]
        studies[name] = {
            "s": s, "cnn": cnn_row, "mlp": mlp_row, "shifts": shifts, "largest": largest,
            "candidate_header": ["CNN candidate", "mean validation accuracy", "std",
                                 *(f"shifted {k} px" for k in shifts), "parameters", "multiply-adds per training",
                                 "chosen in"],
            "candidate_rows": [(i + 1, c["accuracy"]["mean"], c["accuracy"]["std"],
                                *(c["shifted"][k]["mean"] for k in shifts), f"{c['parameters']:,}",
                                c["multiply_adds"], f"{c['chosen']} of {len(s['cnn_splits'])}")
                               for i, c in enumerate(cands)],
            "candidate_formats": [None, "pct", "pct", *(["pct"] * len(shifts)), None, "g", None],
            "split_header": ["seed", *(f"validation accuracy of {i + 1}" for i in range(len(cands))), "chosen",
                             "CNN test accuracy", "MLP test accuracy"],
            "split_rows": [(sp["seed"], *(sc["accuracy"] for sc in sp["selection"]), sp["chosen"] + 1,
                            sp["test_scores"]["accuracy"], mp["test_scores"]["accuracy"])
                           for sp, mp in zip(s["cnn_splits"], s["mlp_splits"])],
            "split_formats": [None, *(["pct"] * len(cands)), None, "pct", "pct"],
            "model_header": ["model (test rows)", "mean test accuracy", "std", "min", "max", "parameters",
                             "multiply-adds per training", *(f"shifted {k} px" for k in shifts)],
            "model_rows": [(label, row["accuracy"]["mean"], row["accuracy"]["std"], row["accuracy"]["min"],
                            row["accuracy"]["max"], _span(row["parameters"]), _span(row["multiply_adds"], "g"),
                            *(row["shifted"][k]["mean"] for k in shifts))
                           for label, row in ((CNN_KEY, cnn_row), (MLP_KEY, mlp_row))],
            "model_formats": [None, "pct", "pct", "pct", "pct", None, None, *(["pct"] * len(shifts))],
            "cnn_vs_mlp": verdicts.paired(cnn_row["accuracy"]["values"], mlp_row["accuracy"]["values"]),
            "cnn_interval": verdicts.mean_interval(cnn_row["accuracy"]["values"]),
            "params_cnn": _span(cnn_row["parameters"]), "params_mlp": _span(mlp_row["parameters"]),
            "param_ratio": np.mean(mlp_row["parameters"]) / np.mean(cnn_row["parameters"]),
            "cost_ratio": np.mean(cnn_row["multiply_adds"]) / np.mean(mlp_row["multiply_adds"]),
            "drop": drop, "drop_paired": verdicts.paired(*drops),
            "both_unaugmented": _unaugmented_drop(s, results.get("accuracy", {}).get("metrics", {}).get(name), largest),
            "size": _effect(s["size"], cands), "augmentation": _effect(s["augmentation"], cands),
            "confused": {**most_confused(cm), "errors": int(off.sum()), "total": int(cm.sum())},
            "vs_ablation": _vs_ablation(results, name, cnn_row["accuracy"]["values"]),
            "trained_shifts": {"cnn": sorted({cands_spec[sp["chosen"]]["shift"] for sp in s["cnn_splits"]}),
                               "mlp": _mlp_shifts(s, results.get("accuracy", {}).get("metrics", {}).get(name))},
            "ties": sum(bool(sp["tied_with"]) for sp in s["cnn_splits"]),
        }
    ctx.update(studies=studies, level=verdicts.LEVEL)
    return ctx


def most_confused(cm) -> dict:
    """Every off-diagonal cell of a confusion matrix ``cm`` (true x predicted) equal to the largest one.

    Returns ``{"cells": [(true, predicted), ...], "count": the largest off-diagonal count}``, so a tie
    between two cells is listed, not hidden behind whichever ``argmax`` meets first.
    """
    cm = np.asarray(cm)
    off = cm - np.diag(np.diag(cm))
    top = int(off.max())
    return {"cells": [(int(i), int(j)) for i, j in zip(*np.nonzero(off == top), strict=True) if i != j],
            "count": top}


def _unaugmented_drop(s: dict, accuracy: dict | None, shift: str) -> dict | None:
    """Validation drop at ``shift`` pixels of the unaugmented CNN candidate minus the unaugmented MLP candidate.

    Both trained on the images as they are, on the same fitting rows; they still differ in pooling,
    training recipe and size, so this compares the two recipes, not the convolution alone.
    ``None`` when either side has no unaugmented candidate (the MLP's
    candidate specs come from the accuracy study, whose candidates the CNN study reuses).
    """
    cnn_plain = [i for i, spec in enumerate(s["cnn_candidate_specs"]) if spec["shift"] == 0]
    if accuracy is None or accuracy.get("candidates") != s["mlp_candidates"] or not cnn_plain:
        return None
    mlp_plain = [i for i, spec in enumerate(accuracy["candidate_specs"]) if spec["shift"] == 0]
    if not mlp_plain:
        return None
    i, j = cnn_plain[0], mlp_plain[0]

    def drops(splits, k):
        return [sp["selection"][k]["accuracy"] - sp["selection"][k]["shifted"][shift] for sp in splits]

    return {"cnn": i + 1, "mlp": j + 1, **verdicts.paired(drops(s["cnn_splits"], i), drops(s["mlp_splits"], j))}


def _mlp_shifts(s: dict, accuracy: dict | None) -> list | None:
    """The training shifts of the MLP recipes chosen across the splits (from the accuracy study's specs)."""
    if accuracy is None or accuracy.get("candidates") != s["mlp_candidates"]:
        return None
    return sorted({accuracy["candidate_specs"][sp["chosen"]]["shift"] for sp in s["mlp_splits"]})


def _vs_ablation(results: dict, name: str, cnn_values) -> dict | None:
    """The CNN minus the ablation's best row, paired, when the ablation ran on the same seeds and rows."""
    ablation, cnn = results.get("ablation"), results["cnn"]
    if ablation is None or name not in ablation["metrics"] or ablation["config"]["seeds"] != cnn["config"]["seeds"]:
        return None
    m = ablation["metrics"][name]
    sp = cnn["metrics"][name]["cnn_splits"][0]
    if (m["split_rows"]["train"], m["split_rows"]["test"]) != (sp["train_rows"], sp["test_rows"]):
        return None
    best = next(r for r in m["rows"] if r["key"] == m["best"])
    return {"key": best["key"], "mean": best["test_accuracy"]["mean"],
            **{f"d_{k}": v for k, v in verdicts.paired(cnn_values, best["test_accuracy"]["values"]).items()}}


def _effect(comparison: dict | None, candidates: list) -> dict | None:
    """A paired comparison of two candidates, with its intervals and verdicts (``against`` 0)."""
    if comparison is None:
        return None
    i, j = comparison["first"], comparison["second"]
    acc = verdicts.paired(comparison["accuracy"]["values"], [0.0] * len(comparison["accuracy"]["values"]))
    shifted = verdicts.paired(comparison["shifted"]["values"], [0.0] * len(comparison["shifted"]["values"]))
    return {**comparison, "a": i + 1, "b": j + 1, "a_row": candidates[i], "b_row": candidates[j],
            "acc": acc, "shift_p": shifted}


def _span(values, fmt: str | None = None) -> str:
    """``"a"`` when every split has the same value, else ``"a - b"`` (smallest to largest)."""
    from nnlab.report.format import g

    show = g if fmt == "g" else (lambda v: f"{int(v):,}")
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)} - {show(high)}"


def stage6(results: dict) -> dict:
    """Stage 6: the weights and the three-way sweep as rows; where the handout's step would diverge."""
    from nnlab.report.format import g

    ctx = _base(results, "6")
    m, c = ctx["m"], ctx["c"]
    ctx.update(
        w_rows=[(n, m["W_std"][i], m["W_orig"][i]) for i, n in enumerate(m["features"])],
        rows=[(lam, f"{s['max_abs_disagreement']:.1e}", "yes" if s["agree"] else "NO",
               ", ".join(g(w) for w in s["keras"]), ", ".join(g(w) for w in s["closed_form"]))
              for lam, s in m["sweep"].items()],
        unstable=[lam for lam, s in m["sweep"].items() if c["lr"] >= 2 * s["lr"]],
    )
    return ctx


def stage7(results: dict) -> dict:
    """Stage 7: the data's story, the search space, each model's score and nnlab's paired differences."""
    ctx = _base(results, "7")
    m = ctx["m"]
    d, head = m["data"], m["headline"]
    lower_is_better = head == "rmse"
    metric_names = list(next(iter(m["table"].values())).keys())
    ours = next(k for k in m["table"] if k.startswith("nnlab"))
    ordered = sorted(m["table"].items(), key=lambda kv: kv[0] != ours)
    best = verdicts.best_of({k: v[head][0] for k, v in m["table"].items()}, m["differences"], ours,
                            lower_is_better)
    diff_rows, said = [], {}
    for name, (delta, low, high) in m["differences"].items():
        side = verdicts.against(low, high)
        if side == "tie":
            said[name] = "cannot tell apart"
        else:
            said[name] = "nnlab better" if (side == "below") == lower_is_better else "nnlab worse"
        diff_rows.append((name, f"{delta:+.4f} [{low:+.4f}, {high:+.4f}]", said[name]))
    space = m["protocol"]["search_space"]
    grid = space[0]
    vs = against_winner(m["search"], m["interval_level"])
    names = [str(f) for f in d["feature_names"]]
    from nnlab.stages.stage7 import collapse_reason

    collapsed = [e for e in m.get("degenerate_intervals", []) if e["metric"] == head]
    ctx.update(
        treat=column_treatment(m.get("column_treatment")),
        collapsed=collapsed, collapsed_exact=[e for e in collapsed if "exact_interval" in e],
        collapsed_reason=collapse_reason(collapsed, m["split"]["test"]) if collapsed else None,
        head=head, metric_names=metric_names, ours=ours, best=best, level=m["interval_level"],
        train_rows=[(name, m["train_scores"][name], v[head][0]) for name, v in ordered],
        rows=[(name, *(f"{v[k][0]:.4f} [{v[k][1]:.4f}, {v[k][2]:.4f}]" if k in v else "n/a" for k in metric_names))
              for name, v in ordered],
        diff_rows=diff_rows, indistinguishable=[k for k, v in said.items() if v == "cannot tell apart"],
        classes_text=", ".join(f"{n}: {k}" for n, k in zip(d["classes"], d.get("class_counts") or [])),
        breast_cancer=d["source"].endswith("load_breast_cancer"),
        properties=sum(f.startswith("mean ") for f in names),
        depths=sorted({len(h) for h in grid["hidden_layer_sizes"]}),
        widths=sorted({w for h in grid["hidden_layer_sizes"] for w in h}),
        lrs={g_["solver"][0]: g_["learning_rate_init"] for g_ in space},
        pool=m["split"]["train"] + m["split"]["validation"],
        diverged_folds=sum(s["diverged_folds"] for s in m["search"]),
        vs=vs, rank_rows=[(i + 1, s["recipe"], s["cv_loss"], cell) for i, (s, cell) in
                          enumerate(zip(m["search"], vs["cells"]))],
    )
    return ctx


def column_treatment(record: list | None) -> dict | None:
    """Stage 7's per-column record (``metrics["column_treatment"]``) counted for the report's sentence: kept as
    numbers, one-hot ``(name, inputs)``, dropped, filled ``(name, cells)``, constant columns and those of them whose
    blanks were filled with their one value; None without one."""
    if not record:
        return None
    kept = [e for e in record if e["treatment"] != "dropped"]
    filled = [(e["column"], e["missing_cells"]) for e in kept if e["missing_cells"]]
    return {"numeric": sum(e["treatment"] == "numeric" for e in kept),
            "onehot": [(e["column"], e["inputs"]) for e in kept if e["treatment"] == "one-hot"],
            "dropped": len(record) - len(kept), "filled": filled, "filled_cells": sum(k for _, k in filled),
            "constant": [e["column"] for e in kept if e["constant"]], "constant_filled": constant_filled(record)}


_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}


def _layers_text(sizes) -> str:
    """``[64] -> "one layer of 64 units"``, ``[32, 32] -> "two layers of 32 units"``, ``[64, 32] -> "layers of
    64-32 units"``."""
    if len(set(sizes)) == 1 and len(sizes) in _COUNT_WORDS:
        return f"{_COUNT_WORDS[len(sizes)]} layer{'s' if len(sizes) > 1 else ''} of {sizes[0]} units"
    return "layers of " + "-".join(map(str, sizes)) + " units"


def against_winner(search: list, level: float) -> dict:
    """Each recipe's CV fold losses minus the winner's (rank 1), paired over the same folds.

    The winner is the lowest mean CV loss; a recipe "cannot be told apart" from it when
    ``|t| <= t_critical`` (:func:`verdicts.paired_t`), and a recipe with a diverged fold is worse.
    Returns the table cells, the tied and worse ranks, the largest tied ``|t|``, the smallest worse
    ``|t|``, and the hidden layers of the winner and of the recipes tied with it (as words).
    """
    winner = search[0]
    cells, ties, worse, tied_t, worse_t = ["(winner)"], [], [], [], []
    for rank, s in enumerate(search[1:], start=2):
        if s["diverged_folds"]:
            cells.append(f"worse: diverged on {s['diverged_folds']} fold(s)")
            worse.append(rank)
            continue
        cmp = verdicts.paired_t(s["cv_loss_folds"], winner["cv_loss_folds"], level)
        tie = cmp["verdict"] == "tie"
        (ties if tie else worse).append(rank)
        (tied_t if tie else worse_t).append(abs(cmp["t"]))
        cells.append(f"{cmp['mean']:+#.2g} ± {cmp['se']:#.2g}, \\|t\\| {abs(cmp['t']):.2f}: "
                     + ("cannot tell apart" if tie else ("worse" if cmp["t"] > 0 else "better")))
    tied_layers = [winner["hidden_layer_sizes"]] + [search[r - 1]["hidden_layer_sizes"] for r in ties]
    distinct = [h for i, h in enumerate(tied_layers) if h not in tied_layers[:i]]
    other_layers = sum(s["hidden_layer_sizes"] != winner["hidden_layer_sizes"] for s in search[1:])
    widths = sorted({w for h in distinct for w in h})
    folds = len(winner["cv_loss_folds"])
    # a bare | would end a Markdown table cell
    return {"column": f"minus the winner's, paired over the {folds} folds (mean ± se, \\|t\\|)",
            "cells": cells, "ties": ties, "worse": worse, "folds": folds,
            "t_critical": verdicts.t_critical(folds, level),
            "t_max_tie": max(tied_t) if tied_t else None, "t_min_worse": min(worse_t) if worse_t else None,
            "winner_layers": _layers_text(winner["hidden_layer_sizes"]), "tied_shapes": len(distinct),
            "tied_depths": [_COUNT_WORDS.get(d, str(d)) for d in sorted({len(h) for h in distinct})],
            "tied_widths": str(widths[0]) if len(widths) == 1 else f"{widths[0]} to {widths[-1]}",
            "other_layers": other_layers}


def closing(results: dict) -> dict:
    """What each component buys: numbers from Stages 2-5."""
    stages = [k for k in ("2", "3", "4", "5") if k in results]
    growing = stage4(results)["growing"] if "4" in results else []
    return {"this": {k: results[k]["metrics"] for k in stages}, "cfg": {k: results[k]["config"] for k in stages},
            "growing": growing, "grows_most": max(growing, key=lambda gr: max(gr["magnitudes"]) / gr["magnitudes"][0])
            if growing else None,
            "confident_p": 0.01, "confident_wrong_loss": -math.log(0.01),
            "capacity3": {k: _capacity(r, results["3"]["metrics"]["adam"][k])
                          for k, r in results["3"]["metrics"]["runs"].items()} if "3" in results else {},
            "loo": _loo_gain(results["4"]) if "4" in results else None,
            "ablated": _ablated(results["ablation"], ("depth", "adamw", "dropout")) if "ablation" in results else {}}


def _loo_gain(result: dict) -> dict:
    """Stage 4's held-out error over the λ sweep: the leave-one-out MSE at the first λ and at the lowest."""
    sweep = result["metrics"]["sweep"]
    lams = list(sweep)
    best = min(lams, key=lambda lam: sweep[lam]["leave_one_out"]["mse"])
    return {"first_lam": lams[0], "first": sweep[lams[0]]["leave_one_out"]["mse"], "best_lam": best,
            "best": sweep[best]["leave_one_out"]["mse"]}


def _ablated(result: dict, keys) -> dict:
    """Named ablation rows per dataset: what the row adds, its paired change (points) and whether it beats the noise."""
    found = {}
    for name, m in result["metrics"].items():
        for r in m["rows"]:
            if r["key"] in keys and r["change"] is not None:
                ch = r["change"]
                found.setdefault(r["key"], {"label": r["label"], "datasets": {}})["datasets"][name] = {
                    "mean": 100 * ch["mean"], "se": 100 * ch["se"], "t": ch["t"], "t_critical": ch["t_critical"],
                    "beyond_noise": ch["beyond_noise"], "splits": ch["splits"], "recipe": _recipe_change(r)}
    return found


def _choices(row: dict) -> str:
    """What a row chose in each split, e.g. ``"dropout 0.1 in 3 splits, 0.3 in 2"``."""
    if not row["tuned"]:
        return ""
    parts = []
    for name in row["tuned"]:
        picked = [choice[name] for choice in row["chosen"]]
        counts = [(v, picked.count(v)) for v in row["tuned"][name] if v in picked]
        parts.append(f"{name} " + ", ".join(f"{v:g} in {n} split{'s' if n != 1 else ''}" for v, n in counts))
    return "; ".join(parts)


def _tie_breaks(row: dict) -> int:
    """How many of a row's per-split selections had candidates equal on validation accuracy (the tie rule decided)."""
    return sum(len({round(sc["accuracy"], 12) for sc in sel}) < len(sel) for sel in row["selection"] if sel)


def _grid_edges(rows: list) -> list[dict]:
    """Tuned settings chosen at the smallest or largest value of their grid in every split (the grid may be narrow)."""
    edges = []
    for r in rows:
        for name, grid in r["tuned"].items():
            picked = {choice[name] for choice in r["chosen"]}
            if len(picked) == 1 and next(iter(picked)) in (min(grid), max(grid)):
                value = next(iter(picked))
                edges.append({"row": r["key"], "name": name, "value": value, "grid": grid,
                              "end": "top" if value == max(grid) else "bottom", "splits": len(r["chosen"])})
    return edges


def _value(v) -> str:
    """A setting as the ablation table writes it: ``(256, 256)`` as ``256-256``, numbers compactly."""
    if isinstance(v, list):
        return "-".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return "none" if v is None else str(v)


def _recipe_change(row: dict) -> str:
    """``"optimizer sgd → adam; lr 0.01 → 0.001"``; a tuned setting reads ``"dropout 0 → chosen"``."""
    return "; ".join(f"{c['field']} {_value(c['before'])} → {'chosen' if c['after'] is None else _value(c['after'])}"
                     for c in row["changes"]) or "—"


def ablation(results: dict, docs) -> dict:
    """The ablation: each dataset's rows as table cells and sentences, and the measured times if they fit.

    The times come from ``docs/ablation_times.json`` (written by a separate timed run, never by
    the report); times measured for another configuration of the study are not shown.
    """
    from nnlab.report.format import pct

    result = results["ablation"]
    c = result["config"]
    times_path = Path(docs) / "ablation_times.json"
    measured = json.loads(times_path.read_text()) if times_path.exists() else None
    stale = measured is not None and measured.get("config") != c  # times of another configuration are not these
    if stale:
        measured = None
    datasets = []
    for name, m in result["metrics"].items():
        cpu = (measured or {}).get("cpu_seconds", {}).get(name, {})
        rows, cells = [], []
        for r in m["rows"]:
            finals = cpu.get(r["key"], {}).get("final")
            change = r["change"]
            delta = "—" if change is None else f"{100 * change['mean']:+.2f} ± {100 * change['se']:.2f} pts"
            tuned = _choices(r)
            cells.append((r["key"], r["label"], _recipe_change(r), tuned or "—", pct(r["test_accuracy"]["mean"]),
                          pct(r["test_accuracy"]["std"]), delta, f"{r['work_gmac']:.1f}")
                         + ((f"{sum(finals) / len(finals):.2f}",) if measured else ()))
            rows.append({"key": r["key"], "label": r["label"], "acc": r["test_accuracy"], "change": change,
                         "tuned": tuned, "tie_breaks": _tie_breaks(r)})
        header = ["row", "adds", "recipe change", "tuned (choice per split)", "mean test accuracy", "std",
                  "change vs row above", "work (10⁹ multiply-adds)"] + (["CPU s per training"] if measured else [])
        best = next(r for r in m["rows"] if r["key"] == m["best"])
        goal = verdicts.accuracy_interval(best["test_accuracy"]["values"])
        goal["verdict"] = verdicts.against(goal["low"], goal["high"], m["goal"])
        others = sorted((r for r in m["rows"] if r["key"] != m["best"]), key=lambda r: -r["test_accuracy"]["mean"])
        runner = others[0]
        datasets.append({"name": name, "m": m, "rows": rows, "header": header, "table": cells, "goal": goal,
                         "runner_up": {"key": runner["key"], "score": runner["test_accuracy"]["mean"],
                                       **verdicts.paired(best["test_accuracy"]["values"],
                                                         runner["test_accuracy"]["values"])},
                         "tie_breaks": [(r["key"], r["tie_breaks"]) for r in rows if r["tie_breaks"]],
                         "harmful": [r for r in rows if r["change"] is not None and r["change"]["beyond_noise"]
                                     and r["change"]["mean"] < 0],
                         "edges": _grid_edges(m["rows"]),
                         "scale": m["pixel_scale"],
                         "first_epochs": m["rows"][0]["epochs"], "last_epochs": m["rows"][-1]["epochs"]})
    first = next(iter(result["metrics"].values()))
    cpu_total = sum(r["total"] for d in (measured or {}).get("cpu_seconds", {}).values() for r in d.values())
    return {"c": c, "datasets": datasets, "splits": first["splits"], "base": first["base"],
            "work_passes": first["work_passes"],
            "t_critical": first["rows"][1]["change"]["t_critical"], "level": first["rows"][1]["change"]["level"],
            "times": {"file": "docs/ablation_times.json", "found": measured is not None, "stale": stale,
                      "cpu_total": cpu_total,
                      **({"command": measured["command"], "wall": measured["wall_seconds"], "jobs": measured["jobs"],
                          "load_before": measured["load_average_before"], "revision": measured.get("revision")}
                       if measured else {})}}
