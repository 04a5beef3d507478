"""Plant the five bugs of issue 17 one at a time in a copy of src/ and run the test written for each.

Usage: ``python tools/planted_bugs.py`` from the repository root; prints one line per bug and exits 1 if a test
missed its bug.  ``tools/mutation_report.py`` calls :func:`check_all` and puts the table in docs/testing.md.
The working tree is never written: each bug goes into a temporary copy that the test run imports instead.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EQUIVALENCE = "tests/test_equivalence.py::"

# (what the bug is, file, original text, planted text, the test that must fail)
BUGS = [
    ("ReLU layer's backward passes the gradient at exactly 0 (>= 0 instead of > 0)", "layers.py",
     "return relu_backward_core(self.out, dout, out=dout if inplace else None)",
     "return np.multiply(dout, self.out >= 0, out=dout if inplace else None)",
     EQUIVALENCE + "test_relu_layer_blocks_the_gradient_at_exactly_zero"),
    ("weight decay applied to biases too", "optim.py",
     "if weight_decay and p.decay:", "if weight_decay:",
     EQUIVALENCE + "test_weight_decay_never_touches_nonzero_biases"),
    ("fit draws one permutation and reuses it every epoch", "train.py",
     "perm = (np.random if rng is None else rng).permutation(n) if shuffle else None",
     "perm = perm if epoch else (np.random if rng is None else rng).permutation(n) if shuffle else None",
     EQUIVALENCE + "test_fit_shuffles_afresh_every_epoch_in_the_handouts_order"),
    ("Linear's backward writes dx over the input it cached", "layers.py",
     "dx = dout @ W  #",
     "dx = np.matmul(dout, W, out=x) if x.shape == (dout.shape[0], W.shape[1]) else dout @ W  #",
     EQUIVALENCE + "test_linear_core_backward_never_writes_over_its_cached_input"),
    ("fused integer-label cross-entropy reads the entry one before each label", "losses.py",
     "at_label = _row_starts(B, C) + labels", "at_label = _row_starts(B, C) + labels - 1",
     EQUIVALENCE + "test_fused_label_cross_entropy_matches_one_hot_rows_exactly_at_each_label"),
]


def run_tests(tests: list[str], module: str = "", original: str = "", planted: str = "") -> int:
    """Run ``tests`` against a temporary copy of src/ with ``original`` replaced by ``planted`` in ``module``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree("src", src, ignore=shutil.ignore_patterns("__pycache__"))
        if module:
            path = src / "nnlab" / module
            text = path.read_text("utf-8")
            if text.count(original) != 1:
                raise SystemExit(f"planted_bugs: the line to change is not once in {module}: {original!r}")
            path.write_text(text.replace(original, planted), "utf-8")
        env = {**os.environ, "PYTHONPATH": str(src), "NNLAB_QUICK": "1"}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                             env=env, capture_output=True, text=True)
        return run.returncode


def check_all() -> list[tuple[str, str, bool]]:
    """``(bug, test, caught)`` for every planted bug; first the same tests must pass on the unchanged copy."""
    if run_tests([test for *_, test in BUGS]) != 0:
        raise SystemExit("planted_bugs: the tests fail without any planted bug")
    # exit code 1: the tests ran and some failed (not a collection or usage error)
    return [(bug, test, run_tests([test], module, original, planted) == 1)
            for bug, module, original, planted, test in BUGS]


def main() -> int:
    results = check_all()
    for bug, test, caught in results:
        print(f"{'caught' if caught else 'MISSED'}: {bug} ({test})")
    return 0 if all(caught for *_, caught in results) else 1


if __name__ == "__main__":
    sys.exit(main())
