"""Data: IDX reading/writing, MNIST folders, splits, minibatches, augmentation."""

import numpy as np
import pytest

from nnlab.data import (
    credit_table,
    iterate_minibatches,
    load_mnist_dir,
    read_idx,
    stratified_kfold,
    stratified_split,
    write_idx,
)
from nnlab.data.augment import random_shift
from nnlab.data.images import DatasetError


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix, rng):
    arr = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / f"x-idx3-ubyte{suffix}", arr)
    np.testing.assert_array_equal(read_idx(path), arr)


def test_idx_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_idx(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "ok", np.zeros((3, 4), dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "ok").read_bytes()[:-2])
    with pytest.raises(DatasetError, match="expected 12 data bytes"):
        read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")


def test_mnist_dir_pools_train_and_test(tmp_path, rng):
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(6, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (4, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8))
    X, y = load_mnist_dir(tmp_path)
    assert X.shape == (10, 784) and y.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]


def test_mnist_dir_mismatched_counts(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(DatasetError, match="3 images but"):
        load_mnist_dir(tmp_path)


def test_mnist_dir_missing_labels(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(DatasetError, match="train-labels"):
        load_mnist_dir(tmp_path)


def test_stratified_split_is_disjoint_complete_and_balanced(rng):
    y = np.repeat(np.arange(4), [50, 30, 20, 100])
    parts = stratified_split(y, (0.6, 0.2, 0.2), rng)
    allidx = np.concatenate(parts)
    assert len(allidx) == len(y) == len(np.unique(allidx))
    for p, frac in zip(parts, (0.6, 0.2, 0.2)):
        counts = np.bincount(y[p], minlength=4)
        np.testing.assert_allclose(counts / np.bincount(y), frac, atol=0.05)


def test_stratified_split_rejects_bad_fractions(rng):
    with pytest.raises(ValueError):
        stratified_split(np.zeros(4), (0.5, 0.6), rng)


def test_kfold_covers_each_row_once(rng):
    y = np.repeat([0, 1], [13, 7])
    seen = np.concatenate([val for _, val in stratified_kfold(y, 5, rng)])
    assert sorted(seen.tolist()) == list(range(20))
    with pytest.raises(ValueError, match="3 rows cannot make 5 folds"):
        list(stratified_kfold(np.zeros(3), 5, rng))


def test_minibatches_cover_all_rows(rng):
    batches = list(iterate_minibatches(10, 4, rng))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))


def test_random_shift_moves_pixels_without_changing_mass(rng):
    img = np.zeros((1, 64), dtype=np.float32)
    img[0, 27] = 1.0  # (3, 3), well inside an 8x8 image
    out = random_shift(np.repeat(img, 50, axis=0), rng, side=8, max_shift=1)
    assert out.dtype == np.float32 and out.shape == (50, 64)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert len({int(np.argmax(r)) for r in out}) > 3


def test_credit_table_shapes():
    X, y = credit_table()
    assert X.shape == (5, 3) and y.shape == (5, 1)
