"""``nnlab bench``: training and inference speed against PyTorch, scikit-learn and Keras, side by side.

Same models, same data, same batch (128), same plain SGD (lr 0.01), float32, and the
same number of BLAS/OpenMP threads for everyone (``--threads``, default 1), all in
one process run so the machine's state is shared.  Each contender trains for a fixed
number of epochs after a warm-up epoch; that is repeated and the median throughput
(samples per second) is reported, with min and max.  Also timed in the same round-robin:
the GEMM-only limit (a step that is nothing but its matrix products, each in its
fastest layout), so that ``nnlab fit / limit`` is nnlab's fraction of it.  Then
inference throughput, and the peak memory of a whole MNIST training process.

This is a measurement, not a test: timings vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata

import numpy as np

WORKLOADS = {
    "digits": {"sizes": [64, 64, 10], "epochs": 20},
    "mnist": {"sizes": [784, 128, 10], "epochs": 4},
}
BATCH = 128
LR = 0.01
INFERENCE_ROWS = 50_000  # rows predicted per timed repeat
GEMM_ONLY = "GEMM-only limit (no gather, bias, activation, loss or update)"
#: the same for the handout's loop, whose ``MLP.backward`` must return dL/dx: one more product, of the widest layer
HANDOUT_GEMM_ONLY = "GEMM-only limit of the handout loop (with the first layer's dx)"


def load(name: str):
    """float32 features scaled to [0, 1] and int64 labels."""
    from nnlab.data import load_digits, load_mnist_5k

    if name == "digits":
        X, y = load_digits()
        return (X / 16.0).astype(np.float32), y
    X, y = load_mnist_5k()
    return (X / np.float32(255.0)).astype(np.float32), y


def _throughput(run_epochs, n, epochs, repeats):
    run_epochs(1)  # warm-up
    rates = []
    for _ in range(repeats):
        rates.append(_rate(run_epochs, n, epochs))
    return rates


def _rate(run_epochs, n, epochs):
    start = time.perf_counter()
    run_epochs(epochs)
    return n * epochs / (time.perf_counter() - start)


def nnlab_fit(X, y, sizes, seed=0):
    """nnlab's own training loop, the one every stage uses."""
    import nnlab

    rng = np.random.default_rng(seed)
    net = nnlab.make_mlp(sizes, dtype=np.float32, init="xavier", rng=rng)
    opt = nnlab.SGD(net.parameters(), lr=LR)
    loss = nnlab.SoftmaxCrossEntropyLoss()
    return lambda e: nnlab.fit(net, loss, opt, X, y, epochs=e, batch_size=BATCH, rng=rng)


def nnlab_handout(X, y, sizes, seed=0):
    """The handout's Stage 5 loop written out by hand against nnlab's MLP (one hidden layer)."""
    import nnlab

    np.random.seed(seed)
    model = nnlab.MLP(sizes[0], sizes[1], sizes[2], nonlin="relu", dtype=np.float32)
    Y = nnlab.one_hot(y, sizes[2])

    def epochs(e):
        for _ in range(e):
            perm = np.random.permutation(X.shape[0])
            X_shuf, Y_shuf = X[perm], Y[perm]
            for i in range(0, X.shape[0], BATCH):
                Xb, Yb = X_shuf[i : i + BATCH], Y_shuf[i : i + BATCH]
                logits, h = model.forward(Xb)
                probs = nnlab.softmax(logits)
                nnlab.cross_entropy(probs, Yb)
                model.backward(nnlab.softmax_cross_entropy_backward(probs, Yb), h)
                for layer in (model.l1, model.l2):
                    layer.W -= LR * layer.dW
                    layer.b -= LR * layer.db

    return epochs


def torch_loop(X, y, sizes, seed=0):
    """PyTorch: the same MLP, SGD and batch, idiomatic loop."""
    import torch

    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(a, b, dtype=torch.float32))
    return torch_sgd_epochs(torch.nn.Sequential(*layers), Xt, yt, BATCH)


def torch_sgd_epochs(net, Xt, yt, batch: int):
    """``epochs(e)``: ``e`` epochs of PyTorch's idiomatic loop (shuffle, zero_grad, cross-entropy, backward, SGD)."""
    import torch

    opt, loss = torch.optim.SGD(net.parameters(), lr=LR), torch.nn.CrossEntropyLoss()

    def epochs(e):
        for _ in range(e):
            perm = torch.randperm(Xt.shape[0])
            for i in range(0, Xt.shape[0], batch):
                idx = perm[i : i + batch]
                opt.zero_grad()
                loss(net(Xt[idx]), yt[idx]).backward()
                opt.step()

    return epochs


def sklearn_mlp(X, y, sizes, seed=0):
    """scikit-learn MLPClassifier with plain SGD, no momentum, no L2, no early stopping."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def epochs(e):
        model = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver="sgd", learning_rate_init=LR,
                              momentum=0.0, nesterovs_momentum=False, alpha=0.0, batch_size=BATCH, max_iter=e,
                              tol=0.0, n_iter_no_change=e + 1, random_state=seed, shuffle=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)

    return epochs


def keras_fit(X, y, sizes, seed=0, threads=1):
    """Keras 3 (TensorFlow backend): the same model through ``model.fit``, on ``threads`` threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    try:  # TensorFlow's own thread pools, which threadpoolctl does not reach (possible before TF starts only)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([tf.keras.layers.Input(shape=(sizes[0],))]
                                + [tf.keras.layers.Dense(h, activation="relu") for h in sizes[1:-1]]
                                + [tf.keras.layers.Dense(sizes[-1])])
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=LR),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return lambda e: model.fit(X, y, batch_size=BATCH, epochs=e, verbose=0, shuffle=True)


def keras_in_child(workload: str, epochs: int, repeats: int, threads: int):
    """Keras's training rates (samples/s, one per repeat), measured in a child process after the others.

    Why apart: TensorFlow keeps threads of its own (thread pools, tf.data autotuning) that
    threadpoolctl does not reach and that outlive ``model.fit``; in the round-robin they
    slowed every contender timed after Keras, and made their timings scatter twofold.
    """
    code = (f"import json; from threadpoolctl import threadpool_limits; threadpool_limits({threads}); "
            f"from nnlab import bench; X, y = bench.load({workload!r}); "
            f"run = bench.keras_fit(X, y, bench.WORKLOADS[{workload!r}]['sizes'], threads={threads}); "
            f"print(json.dumps(bench._throughput(run, len(y), {epochs}, {repeats})))")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _best_seconds(fn, repeats=20) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_products(sizes, dtype=np.float32, seed=0, first_dx=False, rows=BATCH):
    """The matrix products of one training step, each in its fastest layout on this machine.

    Per layer: forward ``x @ W.T``, weight gradient ``dout.T @ x`` and, above the first
    layer, input gradient ``dout @ W`` (``fit`` never needs dx of the first layer; the
    handout's ``MLP.backward`` returns it, so ``first_dx=True`` counts it too).  Each
    product is timed in two equivalent layouts (e.g. ``x @ W.T`` against ``x @ Wt`` with a
    contiguous transposed copy) and the faster is kept, so the limit is the best these
    GEMMs can do here, not nnlab's choice of layout.  ``rows``: the batch's rows.  Returns
    ``(products, flops)``: argument-free callables and the step's floating-point operation count.
    """
    rng = np.random.default_rng(seed)
    products, flops = [], 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = rng.standard_normal((rows, a)).astype(dtype)
        dout = rng.standard_normal((rows, b)).astype(dtype)
        W = rng.standard_normal((b, a)).astype(dtype)
        Wt = np.ascontiguousarray(W.T)
        pairs = [(lambda x=x, W=W: x @ W.T, lambda x=x, Wt=Wt: x @ Wt),
                 (lambda d=dout, x=x: d.T @ x, lambda d=dout, x=x: (x.T @ d).T)]
        if i or first_dx:
            pairs.append((lambda d=dout, W=W: d @ W, lambda d=dout, Wt=Wt: (Wt @ d.T).T))
        products += [min(pair, key=_best_seconds) for pair in pairs]
        flops += 2 * rows * a * b * len(pairs)
    return products, flops


def gemm_only(X, y, sizes, seed=0, first_dx=False):
    """The GEMM-only limit as a contender: per batch of 128 rows, only the step's matrix products.

    No gather, no bias, no activation, no loss, no update: what a training step would cost
    if its GEMMs were all there was.  Timed in the same round-robin as the real contenders,
    so ``nnlab fit / this`` is nnlab's fraction of the limit.  With ``first_dx=True``, the
    limit of any loop written against the handout's API (``PyTorch / this`` is then the
    largest speed-up over PyTorch such a loop could show).
    """
    full, last = divmod(X.shape[0], BATCH)  # full batches, then a short one, as every contender runs them
    products, _ = gemm_products(sizes, X.dtype, seed, first_dx)
    short = gemm_products(sizes, X.dtype, seed, first_dx, rows=last)[0] if last else []

    def epochs(e):
        for _ in range(e):
            for _ in range(full):
                for product in products:
                    product()
            for product in short:
                product()

    return epochs


def step_profile(X, y, sizes, steps=300, seed=0) -> dict:
    """Where one step of ``fit`` goes: median microseconds of each part, over ``steps`` shuffled batches.

    The parts are fit's own calls, timed one by one: the gather of the batch, the forward
    core, the loss core, the backward core (no dx for the first layer) and the optimizer step.
    """
    import nnlab

    rng = np.random.default_rng(seed)
    net = nnlab.make_mlp(sizes, dtype=X.dtype, init="xavier", rng=rng)
    optimizer, loss = nnlab.SGD(net.parameters(), lr=LR), nnlab.SoftmaxCrossEntropyLoss()
    batch = np.empty((BATCH, X.shape[1]), X.dtype)
    parts = {"gather": [], "forward": [], "loss": [], "backward": [], "update": []}
    clock = time.perf_counter
    for step in range(steps + 20):  # the first 20 warm up
        idx = rng.choice(len(X), BATCH, replace=False)
        t0 = clock()
        Xb, yb = np.take(X, idx, axis=0, out=batch, mode="clip"), y[idx]
        t1 = clock()
        out = net._forward(Xb, False)
        t2 = clock()
        _, grad = loss._loss(out, yb, True)
        t3 = clock()
        net._backward(grad, True, False)
        t4 = clock()
        optimizer.step()
        t5 = clock()
        if step >= 20:
            for part, (a, b) in zip(parts, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]):
                parts[part].append((b - a) * 1e6)
    return {part: statistics.median(times) for part, times in parts.items()}


def gemm_step_seconds(sizes, dtype=np.float32, repeats=200):
    """Time (s) and speed (GFLOP/s) of one step's matrix products (see :func:`gemm_products`), best of ``repeats``."""
    products, flops = gemm_products(sizes, dtype)
    seconds = _best_seconds(lambda: [product() for product in products], repeats)
    return seconds, flops / seconds / 1e9


def _paired(rates_a, rates_b) -> dict:
    """Two measures of ``a / b`` and the spread of the repeat-by-repeat ratios.

    Returns ``{"paired_median", "min", "max"}`` of the ratios ``a_i / b_i`` of the same repeat
    and ``"of_medians"``, ``median(a) / median(b)``.  Under a steady machine the two medians agree;
    when they point in different directions (one above 1, the other below) the load moved
    under the measurement and :func:`ratio_text` calls the ratio inconclusive.
    """
    ratios = [a / b for a, b in zip(rates_a, rates_b, strict=True)]
    return {"paired_median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "of_medians": statistics.median(rates_a) / statistics.median(rates_b)}


def _unpaired(rates_a, rates_b) -> dict:
    """``a / b`` from contenders timed apart: only the ratio of medians exists (see :func:`_paired`)."""
    return {"paired_median": None, "min": None, "max": None,
            "of_medians": statistics.median(rates_a) / statistics.median(rates_b)}


def inconclusive(ratio: dict) -> bool:
    """Whether the paired median and the ratio of medians disagree in direction (one above 1, one below)."""
    paired = ratio["paired_median"]
    return paired is not None and (paired - 1) * (ratio["of_medians"] - 1) < 0


def ratio_text(ratio: dict | None, percent: bool = False) -> str:
    """A ratio's table cell: the paired median with the range of the paired ratios and the ratio of medians,
    ``inconclusive`` when :func:`inconclusive`; ``n/a`` when it was not measured."""
    if ratio is None:
        return "n/a"

    def f(v):
        return f"{v:.0%}" if percent else f"{v:.2f}x"

    if ratio["paired_median"] is None:
        return f"{f(ratio['of_medians'])} (medians only; timed apart)"
    spread = f"paired {f(ratio['paired_median'])}, range {f(ratio['min'])} - {f(ratio['max'])}; " \
             f"medians {f(ratio['of_medians'])}"
    return f"inconclusive ({spread})" if inconclusive(ratio) else f"{f(ratio['paired_median'])} ({spread})"


def inference(X, sizes, repeats=5):
    """Forward-pass throughput (samples/s, median) of nnlab and, if present, PyTorch, batches of 1024.

    Round-robin like training: each repeat times nnlab then PyTorch; ``ratio`` is nnlab / PyTorch
    as :func:`_paired` measures it.
    """
    import nnlab

    net = nnlab.make_mlp(sizes, dtype=np.float32, rng=np.random.default_rng(0))
    runners = {"nnlab": lambda e: [nnlab.train.predict(net, X, 1024) for _ in range(e)]}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tnet = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1], dtype=torch.float32), torch.nn.ReLU(),
                                   torch.nn.Linear(*sizes[1:], dtype=torch.float32))
        Xt = torch.from_numpy(X)

        def fwd(e):
            with torch.no_grad():
                for _ in range(e):
                    for i in range(0, len(Xt), 1024):
                        tnet(Xt[i : i + 1024])

        runners["PyTorch"] = fwd
    rates = {label: [] for label in runners}
    for run_epochs in runners.values():
        run_epochs(1)  # warm-up
    passes = max(5, INFERENCE_ROWS // len(X))  # long enough that one stall of the machine cannot dominate
    for _ in range(repeats):
        for label, run_epochs in runners.items():
            rates[label].append(_rate(run_epochs, len(X), passes))
    out = {label: statistics.median(r) for label, r in rates.items()}
    if "PyTorch" in rates:
        out["ratio"] = _paired(rates["nnlab"], rates["PyTorch"])
    return out


_HWM = ("; print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')))")
CHILD = {
    "nnlab": "import numpy as np, nnlab; from nnlab.bench import load, nnlab_fit; X, y = load('mnist'); "
             "nnlab_fit(X, y, [784, 128, 10])(2)",
    "PyTorch": "import numpy as np, torch; from nnlab.bench import load, torch_loop; X, y = load('mnist'); "
               "torch_loop(X, y, [784, 128, 10])(2)",
}


def peak_memory_mib(which: str, threads: int):
    """Peak resident memory (MiB) of a fresh process that loads MNIST-5k and trains 2 epochs.

    The child reports its own high-water mark (VmHWM, Linux); the fork's copy of this
    process's memory before ``exec`` is not counted.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = f"from threadpoolctl import threadpool_limits; threadpool_limits({threads}); " + CHILD[which] + _HWM
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def source_revision(package=None) -> str | None:
    """The git commit of the nnlab source this process runs, for the record; None outside a git checkout.

    The short hash, followed by "with uncommitted changes" when the files of the package folder
    (``package``, default nnlab's own) differ from that commit: a measurement of code that no
    commit holds.
    """
    from pathlib import Path

    here = Path(package or Path(__file__).resolve().parent)

    def git(*args):
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=30)

    try:
        # the package's own files must be tracked: an installed copy inside some other repository is not a checkout
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return None
        head, changes = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" with uncommitted changes" if changes.stdout.strip() else "")


def revision_text() -> str:
    """``commit <hash>`` for a table's header line, or ``commit not recorded (not a git checkout)``."""
    revision = source_revision()
    return f"commit {revision}" if revision else "commit not recorded (not a git checkout)"


def environment(threads: int) -> dict:
    """Versions and BLAS details, for the record."""
    from threadpoolctl import threadpool_info

    import nnlab

    info = {"python": platform.python_version(), "numpy": np.__version__, "nnlab": nnlab.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "threads": threads,
            "load_start": os.getloadavg()[0],  # other processes share the CPUs: say how busy they were
            "revision": revision_text()}
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    info["blas"] = ", ".join(blas)
    for key, dist in (("torch", "torch"), ("sklearn", "scikit-learn"), ("tensorflow", "tensorflow-cpu")):
        try:
            info[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[key] = "not installed"
    return info


def run(threads=1, repeats=5, quick=False, keras=False, memory=True):
    """Run every measurement; returns a JSON-ready dict."""
    from threadpoolctl import threadpool_limits

    contenders = {"nnlab fit": nnlab_fit, "nnlab handout loop": nnlab_handout, "PyTorch": torch_loop,
                  "scikit-learn MLPClassifier": sklearn_mlp}
    contenders[GEMM_ONLY] = gemm_only
    contenders[HANDOUT_GEMM_ONLY] = functools.partial(gemm_only, first_dx=True)
    results = {"environment": environment(threads), "batch": BATCH, "lr": LR, "repeats": repeats, "workloads": {}}
    with threadpool_limits(threads):
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass
        for name, spec in WORKLOADS.items():
            X, y = load(name)
            epochs = max(1, spec["epochs"] // (4 if quick else 1))
            runners = {}
            for label, make in contenders.items():
                try:
                    runners[label] = make(X, y, spec["sizes"])
                except ImportError:
                    continue
                runners[label](1)  # warm-up
            # Round-robin: every repeat times each contender once, so a slow spell of the machine
            # hits all of them; ratios are taken repeat by repeat, then the median.
            rates = {label: [] for label in runners}
            for _ in range(repeats):
                for label, run_epochs in runners.items():
                    rates[label].append(_rate(run_epochs, len(y), epochs))
            base = rates["nnlab fit"]
            rows = {label: {"median": statistics.median(r), "min": min(r), "max": max(r), "ratio": _paired(base, r)}
                    for label, r in rates.items()}
            if keras:
                keras_rates = keras_in_child(name, epochs, repeats, threads)
                if keras_rates:
                    rows["Keras"] = {"median": statistics.median(keras_rates), "min": min(keras_rates),
                                     "max": max(keras_rates), "ratio": _unpaired(base, keras_rates), "unpaired": True}
            gemm_s, gflops = gemm_step_seconds(spec["sizes"])
            infer = inference(X, spec["sizes"], repeats)
            profile = step_profile(X, y, spec["sizes"])
            torch_rates = rates.get("PyTorch")
            handout = rates["nnlab handout loop"]
            goals = {"handout loop / PyTorch": _paired(handout, torch_rates) if torch_rates else None,
                     # the most any loop through the handout's API could show: its GEMMs and nothing else
                     "handout GEMM-only limit / PyTorch": (_paired(rates[HANDOUT_GEMM_ONLY], torch_rates)
                                                           if torch_rates else None),
                     "fit / PyTorch": rows["PyTorch"]["ratio"] if torch_rates else None,
                     "fit / scikit-learn": rows["scikit-learn MLPClassifier"]["ratio"],
                     # scikit-learn does the same products: the most any fit could show over it
                     "GEMM-only limit / scikit-learn": _paired(rates[GEMM_ONLY], rates["scikit-learn MLPClassifier"]),
                     "inference / PyTorch": infer.get("ratio"),
                     "fit / GEMM-only limit": rows[GEMM_ONLY]["ratio"]}
            results["workloads"][name] = {"sizes": spec["sizes"], "samples": len(y), "epochs_per_repeat": epochs,
                                          "training": rows, "gemm_seconds_per_step": gemm_s, "gemm_gflops": gflops,
                                          "gemm_share_of_step": gemm_s * rows["nnlab fit"]["median"] / BATCH,
                                          "inference": infer, "goals": goals, "step_profile_us": profile}
    if memory:
        results["peak_memory_mib"] = {k: peak_memory_mib(k, threads) for k in CHILD}
    results["environment"]["load_end"] = os.getloadavg()[0]
    return results


def table(results) -> str:
    """Markdown tables of a :func:`run`'s results."""
    env = results["environment"]
    lines = [f"Threads: {env['threads']} · BLAS: {env['blas']} · numpy {env['numpy']} · torch {env['torch']} · "
             f"scikit-learn {env['sklearn']} · Python {env['python']} · {env['cpus']} CPUs ({env['machine']}) · "
             f"load average (1 min) {env['load_start']:.1f} at the start, {env.get('load_end', float('nan')):.1f} "
             f"at the end · {env.get('revision', 'commit not recorded')}", ""]
    for name, w in results["workloads"].items():
        lines += [f"**{name}** ({'-'.join(map(str, w['sizes']))} ReLU MLP, {w['samples']} samples, batch "
                  f"{results['batch']}, SGD lr {results['lr']}, float32; {w['epochs_per_repeat']} epochs x "
                  f"{results['repeats']} repeats)", "",
                  "| training | samples/s (median) | us per step | min - max | nnlab fit / this |",
                  "|---|---:|---:|---:|---:|"]
        for label, r in w["training"].items():
            note = " (in a child process)" if r.get("unpaired") else ""
            lines.append(f"| {label} | {r['median'] / 1e3:,.0f} k | {results['batch'] / r['median'] * 1e6:,.0f} | "
                         f"{r['min'] / 1e3:,.0f} - {r['max'] / 1e3:,.0f} k | {ratio_text(r['ratio'])}{note} |")
        inf = w["inference"]
        g = w["goals"]
        lines += ["", f"GEMMs of one step: {w['gemm_seconds_per_step'] * 1e6:.0f} us at {w['gemm_gflops']:.0f} GFLOP/s"
                  f" (best layout of each, best of 200) = {w['gemm_share_of_step']:.0%} of nnlab fit's median step.  "
                  f"The GEMM-only limit, timed alongside: {w['training'][GEMM_ONLY]['median'] / 1e3:,.0f} k samples/s;"
                  f" nnlab fit reaches {ratio_text(g['fit / GEMM-only limit'], percent=True)} of it.", "",
                  "The handout's `MLP.backward` must return dL/dx, one more product (the first layer's dx): the"
                  " GEMM-only limit of a loop through the handout's API, timed alongside, runs"
                  f" {w['training'][HANDOUT_GEMM_ONLY]['median'] / 1e3:,.0f} k samples/s"
                  + (f"; against PyTorch: {ratio_text(g['handout GEMM-only limit / PyTorch'])}."
                     if g["handout GEMM-only limit / PyTorch"] else ".")
                  + " scikit-learn's MLPClassifier computes the same products as nnlab fit; the GEMM-only limit against"
                  f" it: {ratio_text(g['GEMM-only limit / scikit-learn'])}.", "",
                  "Where nnlab fit's step goes (median us per part, timed one part at a time): "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in w["step_profile_us"].items())
                  + f" (sum {sum(w['step_profile_us'].values()):,.0f}).", "",
                  "Inference (batches of 1024): " + ", ".join(f"{k} {v / 1e3:,.0f} k samples/s" for k, v in inf.items()
                                                                if k != "ratio"), "",
                  "| ratio | " + " | ".join(g) + " |",
                  "|---|" + "---:|" * len(g),
                  "| measured | " + " | ".join(ratio_text(v, percent=k.endswith("limit")) for k, v in g.items())
                  + " |", ""]
    mem = results.get("peak_memory_mib")
    if mem:
        lines.append("Peak memory of a whole process that loads MNIST-5k and trains 2 epochs: "
                     + ", ".join(f"{k} {v:.0f} MiB" if v else f"{k} n/a" for k, v in mem.items()))
    return "\n".join(lines) + "\n"


TABULAR_MARK = "<!-- nnlab bench --tabular -->"


def tabular_scale(markdown=None, rows=200_000, cols=20, seed=0) -> dict:
    """Wall time and peak memory of ``nnlab run 7 --quick`` on a generated ``rows`` x ``cols`` numeric CSV.

    The CSV (a seeded nonlinear binary target ``y``) goes to a temporary folder; the command runs
    in a subprocess under ``/usr/bin/time -v``, whose peak RSS is the largest single process
    (the main one or a search worker); the whole process tree's summed proportional set size
    (PSS: shared library pages counted once) is also sampled every 0.1 s with psutil.  With
    ``markdown``, the section between ``TABULAR_MARK`` lines of that file is replaced (or
    appended), the rest of the file left as it is.
    """
    import re
    import shutil
    import tempfile
    from pathlib import Path

    try:
        import psutil
    except ImportError:  # the tree's summed RSS is then not sampled
        psutil = None

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, cols))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=rows) > 0).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        np.savetxt(path, np.c_[X, y], delimiter=",", comments="", fmt=["%.6f"] * cols + ["%d"],
                   header=",".join([f"x{i}" for i in range(cols)] + ["y"]))
        size_mb = path.stat().st_size / 1e6
        command = [sys.executable, "-m", "nnlab.cli", "run", "7", "--quick", "--csv", str(path), "--target", "y",
                   "--out", str(Path(tmp) / "out"), "--no-progress"]
        timer = shutil.which("time") and Path("/usr/bin/time").exists()
        start = time.perf_counter()
        proc = subprocess.Popen((["/usr/bin/time", "-v"] if timer else []) + command, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        tree_peak = 0
        while proc.poll() is None and psutil is not None:
            try:
                procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
                # PSS: each shared page (the libraries every worker maps) is counted once, split among its users
                tree_peak = max(tree_peak, sum(p.memory_full_info().pss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)
        out, err = proc.communicate()  # (waits here when psutil is missing)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"nnlab run 7 failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    result = {"rows": rows, "columns": cols, "csv_mb": size_mb, "wall_seconds": wall,
              "peak_rss_mib": int(found.group(1)) / 1024 if found else None,
              "tree_peak_rss_mib": tree_peak / 2**20 if psutil else None,
              "stage_line": next((ln.strip() for ln in out.splitlines() if ln.startswith("Stage 7")), "")}
    text = (f"{TABULAR_MARK}\n## Stage 7 at scale\n\nMade by `nnlab bench --tabular` ({revision_text()}): "
            "`nnlab run 7 --quick --csv "
            f"big.csv --target y` on a generated {rows:,} x {cols} numeric CSV ({size_mb:.0f} MB), {os.cpu_count()} "
            f"CPUs: {wall:.1f} s wall time; peak RSS "
            + (f"{result['peak_rss_mib']:.0f} MiB (largest process, `/usr/bin/time -v`); " if found else "")
            + (f"{result['tree_peak_rss_mib']:.0f} MiB summed over the process and its search workers "
               "(proportional set size, shared pages counted once, sampled every 0.1 s)" if psutil
               else "the process tree's sum not sampled (no psutil)")
            + f".\n{TABULAR_MARK}\n")
    print(text)
    if markdown:
        write_section(markdown, TABULAR_MARK, text)
    return result


def write_section(markdown, mark: str, text: str) -> None:
    """Replace the part between ``mark`` lines of the file ``markdown`` by ``text`` (or append it); the rest stays."""
    from pathlib import Path

    doc = Path(markdown)
    old = doc.read_text() if doc.exists() else ""
    pattern = _section_pattern(mark)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    doc.write_text(new)


def _section_pattern(mark: str):
    """A section of docs/benchmarks.md: from a ``mark`` line to the next (its final newline optional)."""
    import re

    return re.compile(re.escape(mark) + ".*?" + re.escape(mark) + "\n?", re.S)


def main(argv=None) -> int:
    """Command-line entry: ``nnlab bench [--threads N] [--repeats R] [--quick] [--keras] [--json F] [--markdown F]``
    (or ``--tabular``, ``--cnn``, ``--runs`` for one section)."""
    parser = argparse.ArgumentParser(prog="nnlab bench", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats (a smoke test)")
    parser.add_argument("--keras", action="store_true", help="also time Keras (slow to import)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--markdown", help="also write the tables here")
    parser.add_argument("--tabular", action="store_true",
                        help="only Stage 7 at scale (200,000 x 20 CSV); with --markdown, replace just its section")
    parser.add_argument("--cnn", action="store_true",
                        help="only the CNN training step against PyTorch; with --markdown, replace just its section")
    parser.add_argument("--runs", action="store_true",
                        help="only the wall and CPU time of `nnlab run all` and (in a checkout) `make test`; with "
                             "--quick, of `nnlab run all --quick` alone; with --markdown, replace just its section")
    args = parser.parse_args(argv)
    if args.runs:
        from nnlab import bench_runs

        text = bench_runs.table(bench_runs.run(make_test=not args.quick, quick=args.quick))
        print(text)
        if args.markdown:
            write_section(args.markdown, bench_runs.MARK, text)
        return 0
    if args.tabular:
        tabular_scale(args.markdown)
        return 0
    if args.cnn:
        from nnlab import bench_cnn

        results = bench_cnn.run(args.threads, 2 if args.quick else args.repeats, args.quick)
        text = bench_cnn.table(results)
        print(text)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=2)
        if args.markdown:
            write_section(args.markdown, bench_cnn.MARK, text)
        return 0
    results = run(args.threads, 2 if args.quick else args.repeats, args.quick, args.keras, not args.no_memory)
    text = table(results)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    if args.markdown:
        write_main(args.markdown, "nnlab bench " + " ".join(argv if argv is not None else sys.argv[1:]), text)
    return 0


def write_main(markdown, command: str, text: str) -> None:
    """Write the main tables to ``markdown`` under its header; the ``--tabular``, ``--cnn`` and ``--runs`` sections
    already in the file (each made by its own, longer run) are kept after them."""
    from pathlib import Path

    from nnlab.bench_cnn import MARK as CNN_MARK
    from nnlab.bench_runs import MARK as RUNS_MARK

    doc = Path(markdown)
    old = doc.read_text() if doc.exists() else ""
    kept = [m.group(0).rstrip("\n") + "\n" for mark in (TABULAR_MARK, CNN_MARK, RUNS_MARK)
            if (m := _section_pattern(mark).search(old))]
    doc.write_text(f"# Benchmarks\n\nMade by `{command}` (the tables below are its output, unedited).\n"
                   "Timings vary with the machine and its load (the load average is printed below). Every\n"
                   "repeat times each contender in turn; a ratio is the median of the repeat-by-repeat ratios,\n"
                   "with their range and the ratio of the medians next to it, and reads *inconclusive* when\n"
                   "those two medians disagree in direction. See `src/nnlab/bench.py` for the protocol.\n\n"
                   + text + "".join("\n" + section for section in kept))


if __name__ == "__main__":
    sys.exit(main())
