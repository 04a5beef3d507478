"""The ``nnlab`` command: run the handout's stages as reproducible experiments.

    nnlab run 1|2|3|4|5|accuracy|6|7|all [--out DIR] [--seed N] [--quick] [stage options]

Each stage writes its figures and a ``metrics.json`` into ``DIR/stage<ID>/`` and a
summary table to the terminal.  Bad arguments get one line on stderr and exit
status 2; a stage's folder appears only when the stage finished, so an error never
leaves a half-written result behind.

Safe under misuse: every path the command will write (``--out``, ``--save``, predict's
``--out``, report's ``--out/--report/--figures/--docs``) and every file it will read is
checked before any work starts, and a rejected command creates nothing.  A network too
large for the machine's memory is refused before it is built.  Ctrl-C and SIGTERM stop
a run cleanly (one line; exit status 130 and 143); any error nnlab raises on purpose,
and a ``MemoryError``, is one line with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import signal
import sys
import time
from pathlib import Path

from nnlab._io import check_input_file, check_output_dir, check_output_file
from nnlab.errors import NnlabError
from nnlab.parallel import available_cores

EXIT_USAGE = 2
#: exit status after a signal: 128 + its number, as a shell reports it
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

# CLI option -> config field it sets (when the stage's config has that field).
OPTION_FIELDS = {
    "lr": "lr", "epochs": "epochs", "hidden": "hidden", "batch": "batch", "nonlin": "nonlin", "lam": "lam",
    "dataset": "dataset", "mnist_dir": "mnist_dir", "seed": "seed", "csv": "csv", "target": "target",
    "task": "task", "impute": "impute", "categorical": "categorical", "folds": "folds", "save": "save",
    "load": "load", "keep_id_columns": "keep_id_columns", "na_values": "na_values",
    "decimal": "decimal",
}


class UsageError(NnlabError):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every clean-up Ctrl-C runs runs for it too."""


def _terminate(signum, frame):
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(message)


def _float_at_least(low: float, strict: bool):
    """An argparse type: a finite float above ``low`` (or at least ``low`` when not ``strict``)."""
    bound = f"> {low:g}" if strict else f">= {low:g}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = value > low if strict else value >= low
        if not ok or value == float("inf"):  # (NaN fails both comparisons)
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
        return value

    return parse


_positive_float = _float_at_least(0.0, strict=True)
_nonnegative_float = _float_at_least(0.0, strict=False)


def _tokens(text):
    """``'unknown, n.a.,-'`` -> ``('unknown', 'n.a.', '-')``: comma-separated texts, spaces around each removed."""
    tokens = tuple(t.strip() for t in text.split(",") if t.strip())
    if not tokens:
        raise argparse.ArgumentTypeError(f"expected comma-separated cell texts, got {text!r}")
    return tokens


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**32), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    from nnlab.stages import STAGES

    parser = _Parser(prog="nnlab", description="Neural networks from first principles: the handout's stages.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("bench", help="speed against PyTorch, scikit-learn and Keras (nnlab bench --help)")
    run = sub.add_parser("run", help="run one stage, or all of them")
    run.add_argument("stage", choices=[*STAGES, "all"], help="stage id, or 'all'")
    run.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    run.add_argument("--seed", type=_seed, help="random seed (each stage has its own default)")
    run.add_argument("--quick", action="store_true", help="run every stage on a small budget (for the tests)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--threads", type=_positive_int, default=1, help="BLAS threads (default 1, see docs)")
    run.add_argument("--jobs", type=_positive_int, default=available_cores(),
                     help="worker processes (default: one per core)")
    opts = run.add_argument_group("stage options (each applies where the stage has it)")
    opts.add_argument("--lr", type=_positive_float, help="learning rate")
    opts.add_argument("--epochs", type=_positive_int, help="training epochs (Stage 1: steps)")
    opts.add_argument("--hidden", type=_positive_int, help="hidden units")
    opts.add_argument("--batch", type=_positive_int, help="minibatch size")
    opts.add_argument("--nonlin", choices=["relu", "tanh"], help="activation")
    opts.add_argument("--lam", type=_nonnegative_float, help="L2 strength lambda")
    opts.add_argument("--dataset", help="Stage 5: digits|mnist; Stage 7: breast_cancer|wine|iris|diabetes")
    opts.add_argument("--mnist-dir", help="folder with MNIST IDX files (instead of the bundled 5,000 images)")
    opts.add_argument("--csv", help="Stage 7: your own CSV file (with a header row)")
    opts.add_argument("--target", help="Stage 7: the CSV column to predict")
    opts.add_argument("--task", choices=["classification", "regression"], help="Stage 7: task (default: guessed)")
    opts.add_argument("--impute", choices=["mean", "median"],
                      help="Stage 7: fill missing numbers with the training rows' mean (default) or median")
    opts.add_argument("--categorical", choices=["auto", "none"],
                      help="Stage 7: one-hot encode text columns (auto, default) or refuse text (none)")
    opts.add_argument("--na-values", type=_tokens, metavar="TOKENS",
                      help="Stage 7: comma-separated cell texts that mean missing (e.g. 'unknown,n.a.,-'), imputed "
                           "like blank cells; besides pandas' own (NA, n/a, null, ...) and ?, none, missing")
    opts.add_argument("--decimal", choices=["point", "comma"],
                      help="Stage 7: how the CSV writes numbers: 'point' (1,200.5) or 'comma' (1.200,5); default: "
                           "decided from its cells, and a comma no cell decides is an error; saved with --save for "
                           "nnlab predict")
    opts.add_argument("--keep-id-columns", action="store_true", default=None,
                      help="Stage 7: keep identifier-like columns instead of dropping them")
    opts.add_argument("--folds", type=_positive_int, help="Stage 7: cross-validation folds (>= 2)")
    opts.add_argument("--save", help="Stages 5 and 7: save the trained model to this .npz checkpoint")
    opts.add_argument("--load", help="Stages 5 and 7: evaluate this saved model instead of training")
    rep = sub.add_parser("report", help="run every stage and write REPORT.md with its figures")
    rep.add_argument("--out", default="runs/latest", help="folder for the stages' results (default runs/latest)")
    rep.add_argument("--reuse", action="store_true", help="reuse results already in --out instead of rerunning")
    rep.add_argument("--check", action="store_true",
                     help="regenerate in a temporary folder; fail if REPORT.md or docs/generated/ differs")
    rep.add_argument("--report", default="REPORT.md", help="report file (default REPORT.md)")
    rep.add_argument("--figures", default="docs/figures", help="where the report's figures go")
    rep.add_argument("--docs", default="docs", help="folder holding benchmarks.md and robustness.md")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    rep.add_argument("--jobs", type=_positive_int, default=available_cores(),
                     help="worker processes (default: one per core)")
    pred = sub.add_parser("predict", help="apply a saved model to a CSV file")
    pred.add_argument("--model", required=True, help="checkpoint written by nnlab run 5|7 --save")
    pred.add_argument("--csv", required=True, help="CSV with the model's feature columns")
    pred.add_argument("--out", help="write predictions here (default: standard output)")
    pred.add_argument("--strict", action="store_true", help="a text value never seen in training is an error")
    pred.add_argument("--decimal", choices=["point", "comma"],
                      help="how this CSV writes numbers: 'point' (1,200.5) or 'comma' (1.200,5); default: as the "
                           "model's training read its file (a value differing from training's --decimal is refused)")
    return parser


def _configure(module, args, quick: bool, explicit: bool):
    """Build a stage's config from its defaults, ``--quick`` and the CLI options."""
    config = module.Config()
    if quick:
        config = config.quick()
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for option, field in OPTION_FIELDS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if field == "nonlin" and "nonlins" in fields:
            changes["nonlins"] = (value,)
        elif field in fields:
            changes[field] = value
        elif explicit and option != "seed":
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} does not apply to stage {args.stage}")
    return dataclasses.replace(config, **changes)


def _check_inputs(args, configs) -> None:
    """Catch bad inputs before any stage runs, so nothing is written."""
    from nnlab.data.tabular import BUNDLED

    if args.na_values is not None and args.csv is None:
        raise UsageError("--na-values applies to --csv files; the bundled data sets have no missing cells")
    if args.decimal is not None and args.csv is None:
        raise UsageError(f"--decimal {args.decimal} applies to --csv files; the bundled data sets hold numbers already")
    if args.csv is not None and args.dataset is not None and args.stage == "7":  # (in run all, --dataset is stage 5's)
        raise UsageError(f"--dataset {args.dataset} and --csv {args.csv} name two data sets; give one of them")
    if args.dataset is not None:
        allowed = {"5": ("digits", "mnist"), "7": BUNDLED}
        for sid in configs:
            if sid in allowed and args.dataset not in allowed[sid] and (args.stage != "all" or sid == "5"):
                raise UsageError(f"--dataset for stage {sid} must be one of {', '.join(allowed[sid])}, "
                                 f"got {args.dataset!r}")
    if args.folds is not None and args.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {args.folds}")
    if args.stage == "all" and (args.save or args.load):
        raise UsageError("--save and --load need a single stage (5 or 7), not 'all'")
    if args.csv is not None and not args.target:
        raise UsageError("--csv needs --target COLUMN")
    for flag in ("csv", "load"):
        if getattr(args, flag) is not None:
            check_input_file(getattr(args, flag), f"--{flag}")
    if args.load is not None:  # the whole record, checked before any data are read or folders made
        from nnlab.predict import SavedModel

        SavedModel.load(args.load)
    if args.mnist_dir is not None:
        from nnlab.data.images import load_mnist_dir

        try:
            load_mnist_dir(args.mnist_dir)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def _check_outputs(args, ids) -> None:
    """Every path ``nnlab run`` will write, checked before any work starts (nothing is created)."""
    from nnlab.checkpoint import checkpoint_path
    from nnlab.stages.runner import check_out

    check_out(args.out, ids)
    if args.save is not None:
        check_output_file(args.save, "--save")  # a folder name is refused before the suffix is added
        check_output_file(checkpoint_path(args.save), "--save")


#: Stage id -> the layer widths of the network it builds from ``--hidden`` (and the rows of one
#: training step), for the memory estimate made before the stage runs.  Why here and not in the
#: stages: the estimate must come before a stage loads its data or builds anything.
NETWORKS = {
    "2": lambda c: ((1, c.hidden, 1), c.n),
    "3": lambda c: ((1, c.hidden, 1), c.n),
    "5": lambda c: ((784 if c.dataset == "mnist" else 64, c.hidden, 10), c.batch),
}


def _check_memory(args, configs) -> None:
    """Refuse, before any stage runs, a network that cannot fit in the available memory."""
    from nnlab.resources import network_bytes, require_memory
    from nnlab.stages import STAGES

    for sid, config in configs.items():
        if sid not in NETWORKS or getattr(config, "hidden", None) is None:
            continue
        widths, rows = NETWORKS[sid](config)
        # a stage that spreads its work over processes may hold one network in each of them
        workers = args.jobs if "jobs" in inspect.signature(STAGES[sid].run).parameters else 1
        what = f"stage {sid} with --hidden {config.hidden} ({'-'.join(map(str, widths))} network"
        what += f", {workers} worker processes)" if workers > 1 else ")"
        require_memory(workers * network_bytes(widths, rows=rows), what,
                       "lower --hidden" + (" or --jobs" if workers > 1 else ""))


def _print_summary(result, seconds: float) -> None:
    flag = "  ** DIVERGED: these numbers are not a trained model's **" if result.diverged else ""
    print(f"\n{result.title}  ({seconds:.1f} s){flag}")
    width = max((len(label) for label, _ in result.summary), default=10)
    for label, value in result.summary:
        print(f"  {label:<{width}}  {value}")
    for msg in result.messages:
        print(f"  ! {msg}")


def run_command(args) -> int:
    """``nnlab run``: run the requested stage(s) through the stage runner; returns the exit status."""
    from nnlab.stages import STAGES
    from nnlab.stages.runner import run_stages

    ids = list(STAGES) if args.stage == "all" else [args.stage]
    configs = {sid: _configure(STAGES[sid], args, args.quick, explicit=args.stage != "all") for sid in ids}
    _check_inputs(args, configs)
    _check_outputs(args, ids)
    _check_memory(args, configs)
    out = Path(args.out)
    start = time.perf_counter()
    runs = run_stages(configs, out, jobs=args.jobs, progress=not args.no_progress, skip_missing=args.stage == "all",
                      threads=args.threads)
    for run in runs:
        if run.skipped:
            print(f"\nskipping stage {run.stage}: {run.skipped}", file=sys.stderr)
        else:
            _print_summary(run.result, run.seconds)
    if len(ids) > 1:
        print(f"\nAll stages took {time.perf_counter() - start:.1f} s on {args.jobs} process(es). Results in {out}/")
    return 1 if any(run.result is not None and run.result.diverged for run in runs) else 0


def run_report(args) -> int:
    """``nnlab report``: write REPORT.md (or, with ``--check``, verify it)."""
    from nnlab import report
    from nnlab.stages.runner import check_out

    if args.check:
        return report.check(Path(args.report), Path(args.figures), Path(args.docs), jobs=args.jobs)
    check_out(args.out, report.ORDER)
    check_output_file(args.report, "--report")
    check_output_dir(args.figures, "--figures")
    check_output_dir(args.docs, "--docs")
    check_output_dir(Path(args.docs) / "generated", "--docs")
    start = time.perf_counter()
    report.write(Path(args.out), Path(args.report), Path(args.figures), Path(args.docs), args.reuse,
                 progress=not args.no_progress, jobs=args.jobs)
    print(f"wrote {args.report} and its figures in {args.figures}/ ({time.perf_counter() - start:.0f} s)")
    return 0


def run_predict(args) -> int:
    """``nnlab predict``: write predictions for a CSV (atomically when ``--out`` is given)."""
    from nnlab._io import atomic_write_text
    from nnlab.predict import predict_csv

    check_input_file(args.model, "--model")
    check_input_file(args.csv, "--csv")
    if args.out is not None:
        check_output_file(args.out, "--out")
    text, warnings = predict_csv(args.model, args.csv, strict=args.strict, decimal=args.decimal)
    for line in warnings:
        print(f"nnlab: warning: {line}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(args.out, text, "--out")
    print(f"wrote {text.count(chr(10)) - 1} predictions to {args.out}")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``nnlab`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options; see nnlab.bench
        from nnlab.bench import main as bench_main

        return bench_main(argv[1:])
    installed, previous = _install(signal.SIGTERM, _terminate)
    try:
        return _dispatch(argv)
    except (NnlabError, ImportError) as exc:  # nnlab's own messages (and a missing optional package)
        print(f"nnlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:  # a limit of the machine, not a bug: say what could not be had
        detail = f" ({exc})" if str(exc) else ""
        print(f"nnlab: error: out of memory{detail}; ask for a smaller model or fewer --jobs", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # the runner has removed its partial folder on the way out
        if isinstance(exc, Terminated):
            print("nnlab: terminated (SIGTERM)", file=sys.stderr)
            return EXIT_SIGNAL[signal.SIGTERM]
        print("nnlab: interrupted", file=sys.stderr)
        return EXIT_SIGNAL[signal.SIGINT]
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _install(signum, handler) -> tuple[bool, object]:
    """Set a signal handler; returns ``(installed, previous handler)`` (only the main thread may set one)."""
    try:
        return True, signal.signal(signum, handler)
    except ValueError:  # main() called from another thread: leave the signals alone
        return False, None


def _dispatch(argv) -> int:
    args = build_parser().parse_args(argv)
    commands = {"run": run_command, "predict": run_predict, "report": run_report}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
