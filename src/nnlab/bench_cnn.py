"""``nnlab bench --cnn``: a CNN's training step, nnlab against PyTorch, and where nnlab's time goes.

The network is ``nnlab run cnn``'s (:func:`nnlab.conv.make_cnn`, the channels and kernel size
below) on the 5,000 MNIST images as (N, 1, 28, 28) float32 pixels in [0, 1], plain SGD
(lr 0.01), the stage's batch size, one BLAS/OpenMP thread each.  The protocol is the MLP
bench's (:mod:`nnlab.bench`): a warm-up epoch, then round-robin repeats, each timing every
contender for the same epochs, and the ratio as the median of the repeat-by-repeat ratios.

Then a profile of nnlab's step: every part of it timed where it runs (the im2col copies with
the zero padding, every GEMM of the convolutions, the col2im adds, the max-pooling forward and
backward, the rest of the convolutions' bookkeeping, and everything else: ReLU, Flatten, the
linear layer, loss, update, batch gather), means over many steps (so the parts add up to the step).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import numpy as np

from nnlab.bench import LR, _paired, _rate, environment, inconclusive, ratio_text, torch_sgd_epochs

#: The benchmarked CNN (the one ``nnlab run cnn`` trains on MNIST) and its batch size.
NET = {"channels": (16, 32), "kernel_size": 3}
BATCH = 64
EPOCHS = 1  # per timed repeat (5,000 images, 79 steps)
MARK = "<!-- nnlab bench --cnn -->"


def load_images():
    """MNIST-5k as float32 (5000, 1, 28, 28) images in [0, 1] and int64 labels."""
    from nnlab.data import load_mnist_5k

    X, y = load_mnist_5k()
    return (X / np.float32(255.0)).astype(np.float32).reshape(-1, 1, 28, 28), y


def _nnlab_net(seed=0):
    import nnlab

    return nnlab.make_cnn(28, NET["channels"], NET["kernel_size"], dtype=np.float32, rng=np.random.default_rng(seed))


def nnlab_cnn(X, y, seed=0):
    """nnlab's ``fit`` on the CNN."""
    import nnlab

    net = _nnlab_net(seed)
    opt, loss, rng = nnlab.SGD(net.parameters(), lr=LR), nnlab.SoftmaxCrossEntropyLoss(), np.random.default_rng(seed)
    return lambda e: nnlab.fit(net, loss, opt, X, y, epochs=e, batch_size=BATCH, rng=rng)


def torch_cnn(X, y, seed=0):
    """PyTorch: the same layers in the same order, SGD, the idiomatic loop."""
    import torch

    torch.manual_seed(seed)
    c1, c2 = NET["channels"]
    k = NET["kernel_size"]
    net = torch.nn.Sequential(torch.nn.Conv2d(1, c1, k, padding=k // 2), torch.nn.MaxPool2d(2), torch.nn.ReLU(),
                              torch.nn.Conv2d(c1, c2, k, padding=k // 2), torch.nn.MaxPool2d(2), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(c2 * 7 * 7, 10))
    return torch_sgd_epochs(net, torch.from_numpy(X), torch.from_numpy(y), BATCH)


def _timed(owner, name: str, part: str, clock: dict):
    """Replace ``owner.name`` by a wrapper adding its run time to ``clock[part]``; returns the original."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock[part] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    return original


def step_profile(X, y, steps=200, seed=0) -> dict:
    """Mean microseconds per step of each part of nnlab's CNN step (see the module docstring).

    The parts are timed by wrapping the functions that do them for the duration of this
    call; ``conv bookkeeping`` is the convolutions' own time less their im2col, GEMM and
    col2im, ``everything else`` the step less all of the above.
    """
    import nnlab
    from nnlab import conv

    clock = defaultdict(float)
    patches = [(conv.Conv2d, "_flat_padded", "im2col"), (conv.Conv2d, "_im2col", "im2col"),
               (conv.Conv2d, "_col2im", "col2im"), (conv, "_gemm", "GEMM"), (conv.Conv2d, "_forward", "conv"),
               (conv.Conv2d, "_backward", "conv"), (conv.MaxPool2d, "_forward", "pooling"),
               (conv.MaxPool2d, "_backward", "pooling")]
    originals = [(owner, name, _timed(owner, name, part, clock)) for owner, name, part in patches]
    try:
        net = _nnlab_net(seed)
        opt, loss = nnlab.SGD(net.parameters(), lr=LR), nnlab.SoftmaxCrossEntropyLoss()
        rng = np.random.default_rng(seed)
        batch = np.empty((BATCH, *X.shape[1:]), X.dtype)
        rows = defaultdict(list)
        for step in range(steps + 10):  # the first 10 warm up
            clock.clear()
            start = time.perf_counter()
            idx = rng.choice(len(X), BATCH, replace=False)
            Xb, yb = np.take(X, idx, axis=0, out=batch, mode="clip"), y[idx]
            _, grad = loss._loss(net._forward(Xb, False), yb, True)
            net._backward(grad, True, False)
            opt.step()
            total = time.perf_counter() - start
            if step >= 10:
                inner = clock["im2col"] + clock["GEMM"] + clock["col2im"]
                parts = {"im2col (with padding)": clock["im2col"], "GEMM": clock["GEMM"], "col2im": clock["col2im"],
                         "conv bookkeeping": clock["conv"] - inner, "max-pooling": clock["pooling"],
                         "everything else": total - clock["conv"] - clock["pooling"], "step": total}
                for part, seconds in parts.items():
                    rows[part].append(seconds * 1e6)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return {part: statistics.fmean(values) for part, values in rows.items()}  # means: the parts add up to the step


def training_seconds(X, y, quick=False) -> list[dict]:
    """Wall time of one training run of each ``nnlab run cnn`` model on MNIST (4,000 rows, one at a time).

    The rows are seed 0's training rows; every CNN and MLP candidate of the study is trained
    once, as the study trains it.  Quick mode: 400 rows, a tenth of the epochs.
    """
    from nnlab.selection import outer_split
    from nnlab.stages import cnn

    flat = X.reshape(len(X), -1)
    rows = outer_split(y, 0)[0][: 400 if quick else None]
    specs = [*cnn.CNN_CANDIDATES["mnist"], *cnn.MLP_CANDIDATES["mnist"]]
    timings = []
    for spec in specs:
        if quick:
            spec = cnn._scaled(spec, 0.1)
        start = time.perf_counter()
        cnn._train(spec, flat[rows], y[rows], 0)
        label = spec.describe() if isinstance(spec, cnn.CNNSpec) else f"MLP {spec.describe()}"
        timings.append({"model": label, "rows": len(rows), "seconds": time.perf_counter() - start})
    return timings


def run(threads=1, repeats=5, quick=False) -> dict:
    """Time nnlab against PyTorch on the CNN (round-robin, paired) and profile nnlab's step; JSON-ready."""
    from threadpoolctl import threadpool_limits

    X, y = load_images()
    if quick:
        X, y = X[:640], y[:640]
    results = {"environment": environment(threads), "net": dict(NET), "batch": BATCH, "lr": LR, "repeats": repeats,
               "samples": len(y), "epochs_per_repeat": EPOCHS}
    with threadpool_limits(threads):
        contenders = {"nnlab fit": nnlab_cnn}
        try:
            import torch

            torch.set_num_threads(threads)
            contenders["PyTorch"] = torch_cnn
        except ImportError:
            pass
        runners = {label: make(X, y) for label, make in contenders.items()}
        for run_epochs in runners.values():
            run_epochs(1)  # warm-up
        rates = {label: [] for label in runners}
        for _ in range(repeats):
            for label, run_epochs in runners.items():
                rates[label].append(_rate(run_epochs, len(y), EPOCHS))
        results["training"] = {label: {"median": statistics.median(r), "min": min(r), "max": max(r),
                                       "ratio": _paired(rates["nnlab fit"], r)} for label, r in rates.items()}
        results["step_profile_us"] = step_profile(X, y, steps=30 if quick else 200)
        results["training_seconds"] = training_seconds(*load_images(), quick=quick)
    results["environment"]["load_end"] = __import__("os").getloadavg()[0]
    return results


def table(results) -> str:
    """The Markdown section for docs/benchmarks.md, between :data:`MARK` lines."""
    env, net, train = results["environment"], results["net"], results["training"]
    c1, c2 = net["channels"]
    k = net["kernel_size"]
    lines = [MARK, "## CNN training step", "",
             f"Made by `nnlab bench --cnn{' --quick' if results['samples'] < 5000 else ''}`: "
             "the `nnlab run cnn` network "
             f"(Conv {k}x{k} 1->{c1}, max-pool 2, ReLU, Conv {k}x{k} {c1}->{c2}, max-pool 2, ReLU, Flatten, "
             f"Linear {c2 * 49}->10) on {results['samples']} MNIST images (1x28x28), batch {results['batch']}, SGD lr "
             f"{results['lr']}, float32; {results['epochs_per_repeat']} epoch x {results['repeats']} repeats, "
             f"round-robin. Threads: {env['threads']} · BLAS: {env['blas']} · numpy {env['numpy']} · torch "
             f"{env['torch']} · {env['cpus']} CPUs · load average (1 min) {env['load_start']:.1f} at the start, "
             f"{env['load_end']:.1f} at the end · {env.get('revision', 'commit not recorded')}.", "",
             "| training | samples/s (median) | us per step | min - max | nnlab fit / this (paired median) |",
             "|---|---:|---:|---:|---:|"]
    for label, r in train.items():
        lines.append(f"| {label} | {r['median']:,.0f} | {results['batch'] / r['median'] * 1e6:,.0f} | "
                     f"{r['min']:,.0f} - {r['max']:,.0f} | {ratio_text(r['ratio'])} |")
    if "PyTorch" in train:
        ratio = train["PyTorch"]["ratio"]
        median = ratio["paired_median"]
        if inconclusive(ratio):
            verdict = "inconclusive: the paired median and the ratio of medians point in opposite directions"
        elif median >= 1:
            verdict = "at least PyTorch's speed"
        else:
            verdict = f"{1 / median:.2f}x PyTorch's time per step"
        lines += ["", f"nnlab fit / PyTorch: **{ratio_text(ratio)}**, i.e. {verdict}."]
    prof = results["step_profile_us"]
    step = prof["step"]
    parts = [f"{part} {us:,.0f} ({us / step:.0%})" for part, us in prof.items() if part != "step"]
    lines += ["", f"Where nnlab's step goes (mean us per step over the profiled steps, each part timed where it "
              f"runs): {', '.join(parts)}; whole step {step:,.0f} us.", "",
              "One training run of each model of `nnlab run cnn` (measured once, one thread; the study itself "
              "reports multiply-adds instead, which do not vary from run to run):", "",
              "| model | training rows | seconds |", "|---|---:|---:|"]
    lines += [f"| {t['model']} | {t['rows']:,} | {t['seconds']:.2f} |" for t in results["training_seconds"]]
    lines += [MARK]
    return "\n".join(lines) + "\n"
