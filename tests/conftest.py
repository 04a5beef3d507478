"""Shared fixtures: a seeded generator, float64 PyTorch, figures in pytest's tmp dir, one quick run of every stage."""

import numpy as np
import pytest


def pytest_make_parametrize_id(config, val, argname):
    """Test ids without backslashes or newlines (regex patterns, messages as parameters): such an id cannot be
    passed back to pytest to select its test, which is how `make mutation` runs the tests covering a mutant."""
    if isinstance(val, str):
        return val.replace("\\", "").replace("\n", " ")
    return None


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """One BLAS thread, as the stage runner uses: small GEMMs on a busy machine slow down with more."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def float64_torch():
    """torch with float64 as its default dtype for one test (parity in float64); float32 again afterwards."""
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _figures_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_FIGURES", str(tmp_path / "figures"))


@pytest.fixture(scope="session")
def quick_runs(tmp_path_factory):
    """Every stage in quick mode, run once through the stage runner in one process.

    Returns ``(runs, folder)``: stage id -> :class:`nnlab.stages.runner.StageRun`, and the
    folder holding ``stage<ID>/`` (Stage 6 is skipped when TensorFlow is missing).
    """
    from nnlab.stages import STAGES
    from nnlab.stages.runner import run_stages

    out = tmp_path_factory.mktemp("quick_runs")
    runs = run_stages({sid: m.Config().quick() for sid, m in STAGES.items()}, out, jobs=1, skip_missing=True)
    return {run.stage: run for run in runs}, out
