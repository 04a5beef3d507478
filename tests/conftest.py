"""Shared fixtures: a seeded generator, and figures kept inside pytest's tmp dir."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _figures_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_FIGURES", str(tmp_path / "figures"))
