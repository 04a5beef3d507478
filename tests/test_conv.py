"""Conv2d, MaxPool2d and Flatten: float64 gradient checks, the checked face against the core, N-D training.

PyTorch parity is in ``test_conv_parity.py``; here nothing needs torch.
"""

import numpy as np
import pytest

import nnlab
from nnlab import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from nnlab.conv import output_size

# (N, C, H, W, out_channels, kernel_size, stride, padding)
CONV_CASES = [
    (2, 1, 6, 6, 2, 3, 1, 0),
    (2, 3, 7, 6, 4, 3, 1, 1),
    (3, 2, 9, 8, 3, (3, 2), (2, 1), (1, 0)),
    (2, 2, 8, 9, 2, (2, 4), (3, 2), (2, 1)),
    (1, 2, 5, 5, 2, 5, 1, 2),
    (2, 1, 7, 7, 2, 3, 2, 1),
]


def _conv(case, rng, dtype=np.float64):
    n, c, h, w, o, k, s, p = case
    return Conv2d(c, o, k, stride=s, padding=p, dtype=dtype, rng=rng), rng.normal(size=(n, c, h, w)).astype(dtype)


def _distinct(rng, shape):
    """Values at least 0.01 apart: no window has a tie, and no finite-difference step of 1e-6 changes its arg-max."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.01


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradcheck(case, rng):
    conv, x = _conv(case, rng)
    result = nnlab.gradcheck(conv, x)
    assert result.passed, str(result)
    assert set(result.errors) == {"input", "Conv2d.W", "Conv2d.b"}


def test_conv2d_gradcheck_across_column_blocks(rng):
    """One image per column block (a tiny block budget): the blocked path must give the same gradients."""
    conv, x = _conv((4, 2, 7, 6, 3, 3, 1, 1), rng)
    conv.col_block_bytes = 1
    assert conv._geometry(x.shape).block == 1
    result = nnlab.gradcheck(conv, x)
    assert result.passed, str(result)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1)])
def test_maxpool2d_gradcheck_without_ties(kernel, stride, rng):
    x = _distinct(rng, (2, 3, 7, 8))
    result = nnlab.gradcheck(MaxPool2d(kernel, stride), x)
    assert result.passed, str(result)


def test_flatten_gradcheck(rng):
    assert nnlab.gradcheck(Flatten(), rng.normal(size=(3, 2, 4, 5))).passed


def test_small_cnn_gradcheck(rng):
    net = Sequential(Conv2d(1, 3, 3, padding=1, rng=rng), MaxPool2d(2), ReLU(), Conv2d(3, 4, 3, rng=rng), ReLU(),
                     Flatten(), Linear(4 * 2 * 2, 3, rng=rng))
    x = rng.normal(size=(2, 1, 8, 8))
    result = nnlab.gradcheck(net, x)
    assert result.passed, str(result)


def test_maxpool_gives_a_tie_to_the_first_position_in_row_major_order():
    x = np.array([[[[1.0, 1.0, 0.0, 0.0],
                    [1.0, 1.0, 0.0, 0.0],
                    [2.0, 0.0, 3.0, 5.0],
                    [0.0, 2.0, 5.0, 5.0]]]])
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[1, 0], [2, 5]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[10, 0, 20, 0], [0, 0, 0, 0], [30, 0, 0, 40], [0, 0, 0, 0]])


def test_overlapping_pool_windows_add_their_gradients():
    """Stride 1, kernel 2: the centre value is every window's maximum, so it collects all four gradients."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0
    pool = MaxPool2d(2, 1)
    np.testing.assert_array_equal(pool.forward(x), np.full((1, 1, 2, 2), 9.0))
    dx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((3, 3))
    expected[1, 1] = 10.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_conv2d_matches_a_direct_loop(rng):
    """The definition, summed pixel by pixel (slow, obviously right), against the GEMM."""
    n, c, h, w, o, k, s, p = 2, 2, 7, 6, 3, (3, 2), (2, 1), (1, 2)
    conv = Conv2d(c, o, k, stride=s, padding=p, rng=rng)
    x = rng.normal(size=(n, c, h, w))
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    ho, wo = output_size(h, k[0], s[0], p[0]), output_size(w, k[1], s[1], p[1])
    expected = np.empty((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
            expected[:, :, i, j] = np.einsum("nchw,ochw->no", patch, conv.W) + conv.b
    np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES[:3], ids=str)
def test_conv2d_face_and_core_agree(case, rng):
    conv, x = _conv(case, rng)
    kept = x.copy()
    out = conv.forward(x)
    dout = rng.normal(size=out.shape)
    dx = conv.backward(dout)
    grads = conv.dW.copy(), conv.db.copy()
    out_core = conv._forward(x.copy(), inplace=True)
    dx_core = conv._backward(dout.copy(), inplace=True, need_dx=True)
    np.testing.assert_array_equal(out_core, out)
    np.testing.assert_array_equal(dx_core, dx)
    np.testing.assert_array_equal(conv.dW, grads[0])
    np.testing.assert_array_equal(conv.db, grads[1])
    assert conv._backward(dout, inplace=True, need_dx=False) is None
    np.testing.assert_array_equal(conv.dW, grads[0])  # the same gradients without dx
    np.testing.assert_array_equal(x, kept)


def test_conv2d_blocks_give_the_numbers_of_one_block(rng):
    conv, x = _conv((5, 3, 9, 8, 4, 3, 1, 1), rng)
    dout = rng.normal(size=(5, 4, 9, 8))
    out, dx = conv.forward(x), conv.backward(dout)
    dW, db = conv.dW.copy(), conv.db.copy()
    conv.col_block_bytes = 1  # one image per block; the columns are rebuilt in backward
    np.testing.assert_allclose(conv.forward(x), out, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(conv.backward(dout), dx, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(conv.dW, dW, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(conv.db, db, rtol=1e-13, atol=1e-14)


def test_a_new_block_budget_takes_effect_for_a_batch_shape_already_seen(rng):
    """col_block_bytes changed between two forwards of the same shape: the second uses the new budget."""
    conv, x = _conv((4, 2, 7, 6, 3, 3, 1, 1), rng)
    conv.forward(x)
    assert conv._geom.block >= 4  # the whole batch in one block
    whole_batch = conv._workspace["cols"][1].nbytes
    conv.col_block_bytes = 1
    conv.forward(x)
    assert conv._geom.block == 1
    assert 4 * conv._workspace["cols"][1].nbytes == whole_batch  # one image's columns


def test_conv2d_column_memory_is_bounded_by_the_block_budget(rng):
    conv = Conv2d(3, 4, 3, padding=1, dtype=np.float32, rng=rng)
    conv.col_block_bytes = 64 * 1024
    x = rng.normal(size=(300, 3, 16, 16)).astype(np.float32)
    out = conv.forward(x)
    per_image = 3 * 9 * 16 * 18 * 4  # fan_in x (output rows x padded width) x 4 bytes
    assert conv._workspace["cols"][1].nbytes <= max(conv.col_block_bytes, per_image)
    conv.backward(np.ones_like(out))
    for name in ("cols", "dcols"):
        assert conv._workspace[name][1].nbytes <= max(conv.col_block_bytes, per_image)
    conv.col_block_bytes = 1  # a budget below one image's columns: one image per block
    conv.forward(x[:5])
    assert conv._geometry(x[:5].shape).block == 1


def test_maxpool_and_flatten_face_and_core_agree(rng):
    x = _distinct(rng, (2, 3, 6, 6))
    for module in (MaxPool2d(2), MaxPool2d(3, 1), Flatten()):
        out = module.forward(x)
        dout = rng.normal(size=out.shape)
        dx = module.backward(dout)
        np.testing.assert_array_equal(module._forward(x.copy(), inplace=True), out)
        np.testing.assert_array_equal(module._backward(dout.copy(), inplace=True), dx)


def test_flatten_never_hands_out_a_view_of_an_array_it_was_not_given(rng):
    x = rng.normal(size=(2, 3, 2, 2))
    flat = Flatten()
    out = flat.forward(x)
    out[...] = 0.0
    assert np.all(x != 0.0)
    given = x.copy()
    assert np.shares_memory(flat._forward(given, inplace=True), given)  # allowed to, when given the array
    dout = rng.normal(size=(2, 12))
    assert not np.shares_memory(flat.backward(dout), dout)
    assert np.shares_memory(flat._backward(dout, inplace=True), dout)  # no copy of a gradient given away


def test_cnn_fit_equals_the_handout_loop(rng):
    """A CNN trained by fit (cores, in place where allowed) and by hand (public faces) ends at the same weights."""
    def build(seed):
        r = np.random.default_rng(seed)
        return Sequential(Conv2d(1, 3, 3, padding=1, rng=r), ReLU(), MaxPool2d(2), Conv2d(3, 4, 3, rng=r),
                          MaxPool2d(2, 1), ReLU(), Flatten(), Linear(4, 3, rng=r))

    X = rng.normal(size=(10, 1, 8, 8))  # 8x8 -> 8x8 -> 4x4 -> 2x2 -> 1x1
    labels = rng.integers(0, 3, size=10)
    X_before = X.copy()
    public, core = build(3), build(3)
    shuffle = np.random.default_rng(5)
    for _ in range(2):
        perm = shuffle.permutation(10)
        for start in range(0, 10, 4):
            idx = perm[start : start + 4]
            out = public.forward(X[idx])
            _, grad = nnlab.SoftmaxCrossEntropyLoss()(out, labels[idx])
            public.backward(grad)
            for p in public.parameters():
                p.value -= 0.1 * p.grad
    nnlab.fit(core, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(core.parameters(), lr=0.1), X, labels, epochs=2,
              batch_size=4, rng=np.random.default_rng(5))
    for p, q in zip(public.parameters(), core.parameters()):
        np.testing.assert_allclose(q.value, p.value, rtol=1e-10, atol=1e-13)
    assert all(not np.array_equal(p.value, u.value) for p, u in zip(core.parameters(), build(3).parameters()))
    np.testing.assert_array_equal(X, X_before)


def test_fit_and_predict_take_images_and_learn(rng):
    """Two classes told apart by where the bright pixel is: a tiny CNN learns it from 4-D input."""
    n = 64
    X = rng.normal(scale=0.1, size=(n, 1, 6, 6))
    y = rng.integers(0, 2, size=n)
    X[y == 0, 0, 1, 1] += 3.0
    X[y == 1, 0, 4, 4] += 3.0
    net = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 2, rng=rng))
    hist = nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=30,
                     batch_size=16, rng=rng)
    assert hist.epoch_loss[-1] < 0.1 * hist.epoch_loss[0]
    assert nnlab.train.accuracy(net, X, y) == 1.0
    # chunks of 7 rows: BLAS may block the sums differently for another row count (last-bit differences)
    np.testing.assert_allclose(nnlab.train.predict(net, X, batch_size=7), net.forward(X), rtol=1e-14, atol=1e-14)


def test_fit_checks_image_rows_and_the_first_layers_shape(rng):
    net = Sequential(Conv2d(1, 2, 3, rng=rng), Flatten(), Linear(2 * 4 * 4, 2, rng=rng))
    opt = nnlab.SGD(net.parameters(), lr=0.1)
    loss = nnlab.SoftmaxCrossEntropyLoss()
    with pytest.raises(nnlab.NnlabValueError, match="X has 5 rows"):
        nnlab.fit(net, loss, opt, np.zeros((5, 1, 6, 6)), np.zeros(4, dtype=int), epochs=1)
    with pytest.raises(nnlab.NnlabValueError, match="expected input of shape \\(batch, 1, height, width\\)"):
        nnlab.fit(net, loss, opt, np.zeros((5, 3, 6, 6)), np.zeros(5, dtype=int), epochs=1)
    with pytest.raises(nnlab.NnlabValueError, match="row axis"):
        nnlab.fit(net, loss, opt, np.zeros(5), np.zeros(5, dtype=int), epochs=1)
    with pytest.raises(nnlab.NnlabValueError, match="expected input of shape"):
        nnlab.train.predict(net, np.zeros((5, 6, 6)))


def test_float32_images_through_float64_layers_stay_float32(rng):
    conv = Conv2d(2, 3, 3, padding=1, rng=rng)
    x = rng.normal(size=(2, 2, 5, 5)).astype(np.float32)
    out = conv.forward(x)
    assert out.dtype == np.float32 and conv.backward(np.ones_like(out)).dtype == np.float32
    assert conv.dW.dtype == np.float64
    np.testing.assert_allclose(out, conv.astype(np.float64).forward(x.astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_gradients_are_overwritten_not_accumulated(rng):
    conv, x = _conv(CONV_CASES[1], rng)
    dout = rng.normal(size=conv.forward(x).shape)
    conv.backward(dout)
    first, buffer = conv.dW.copy(), conv.dW
    conv.backward(dout)
    np.testing.assert_array_equal(conv.dW, first)
    assert conv.dW is buffer


@pytest.mark.parametrize("init, weight_bound, bias_zero", [("pytorch", 1 / np.sqrt(18), False),
                                                           ("he", np.sqrt(6 / 18), True)])
def test_initialisation_bounds(init, weight_bound, bias_zero, rng):
    conv = Conv2d(2, 400, 3, init=init, rng=rng)  # fan_in 2 * 3 * 3 = 18
    assert np.abs(conv.W).max() <= weight_bound and np.abs(conv.W).max() > 0.95 * weight_bound
    assert np.all(conv.b == 0) if bias_zero else (np.abs(conv.b).max() <= 1 / np.sqrt(18) and np.any(conv.b != 0))


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2d(0, 2, 3), "in_channels must be a positive integer"),
    (lambda: Conv2d(1, 2, (3, 3, 3)), "kernel_size must be an int or a pair"),
    (lambda: Conv2d(1, 2, 3, stride=0), "stride must be at least 1"),
    (lambda: Conv2d(1, 2, 3, padding=-1), "padding must be at least 0"),
    (lambda: Conv2d(1, 2, 2.5), "kernel_size must be an int or a pair"),
    (lambda: Conv2d(1, 2, 3, init="xavier"), "init must be 'pytorch' or 'he'"),
    (lambda: MaxPool2d(0), "kernel_size must be at least 1"),
    (lambda: Conv2d(1, 2, 3).forward(np.ones((1, 2, 5, 5))), r"expected input of shape \(batch, 1, height, width\)"),
    (lambda: Conv2d(1, 2, 3).forward(np.ones((5, 5))), "expected input of shape"),
    (lambda: Conv2d(1, 2, 5).forward(np.ones((1, 1, 4, 9))), "smaller than the 5x5 kernel"),
    (lambda: Conv2d(1, 2, 3).forward(np.full((1, 1, 4, 4), np.nan)), "non-finite"),
    (lambda: Conv2d(1, 2, 3).backward(np.ones((1, 2, 2, 2))), "backward\\(\\) was called before forward"),
    (lambda: MaxPool2d(2).backward(np.ones((1, 1, 2, 2))), "backward\\(\\) was called before forward"),
    (lambda: MaxPool2d(2).forward(np.array([[[[1.0, -np.inf], [0.0, 0.0]]]])), "non-finite"),
    (lambda: Flatten().forward(np.ones(3)), r"expected input of shape \(batch, ...\)"),
    (lambda: Flatten().backward(np.ones((1, 3))), "backward\\(\\) was called before forward"),
], ids=lambda v: v.replace("\\", "") if isinstance(v, str) else "")
def test_errors_name_the_layer_and_the_problem(make, message):
    with pytest.raises(nnlab.NnlabError, match=message):
        make()


def test_backward_checks_dout_against_the_last_forward(rng):
    conv, x = _conv(CONV_CASES[1], rng)
    conv.forward(x)
    with pytest.raises(nnlab.NnlabValueError, match=r"backward expected dout of shape \(2, 4, 7, 6\)"):
        conv.backward(np.ones((2, 4, 7, 5)))
    pool = MaxPool2d(2)
    pool.forward(x)
    with pytest.raises(nnlab.NnlabValueError, match=r"backward expected dout of shape \(2, 3, 3, 3\)"):
        pool.backward(np.ones((2, 3, 3, 2)))
    flat = Flatten()
    flat.forward(x)
    with pytest.raises(nnlab.NnlabValueError, match=r"backward expected dout of shape \(2, 126\)"):
        flat.backward(np.ones((2, 125)))


def _cnn(rng, dtype=np.float64):
    return Sequential(Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng), MaxPool2d(2), ReLU(),
                      Conv2d(4, 6, (3, 2), stride=(1, 2), dtype=dtype, rng=rng), ReLU(), Flatten(),
                      Linear(6 * 2 * 2, 3, dtype=dtype, rng=rng))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cnn_checkpoint_round_trip_is_bit_identical(dtype, tmp_path, rng):
    model = _cnn(rng, dtype)
    x = rng.normal(size=(5, 1, 8, 8)).astype(dtype)
    before = nnlab.train.predict(model, x)
    loaded = nnlab.load(model.save(tmp_path / "cnn"))
    assert repr(loaded) == repr(model)
    for (name, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name_b and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nnlab.train.predict(loaded, x), before)


@pytest.mark.parametrize("bad", [{"kernel_size": [3, 0]}, {"kernel_size": "3"}, {"in_channels": -1},
                                 {"stride": [1, 2, 3]}, {"padding": [-1, 0]}])
def test_checkpoint_with_a_bad_conv_record_is_refused(bad, tmp_path, rng):
    import json
    import zipfile

    path = _cnn(rng).save(tmp_path / "cnn")
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(str(np.load(path)["meta"]))
    meta["architecture"]["config"]["layers"][0]["config"].update(bad)
    import io

    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(nnlab.CheckpointError, match="architecture is invalid"):
        nnlab.load(path)


def test_cnn_trains_through_the_estimator_free_path_in_float32(rng):
    """float32 training of a CNN runs and lowers the loss (the speed path the stage uses)."""
    X = rng.random((32, 1, 8, 8), dtype=np.float32)
    y = (X[:, 0, :4].sum(axis=(1, 2)) > X[:, 0, 4:].sum(axis=(1, 2))).astype(int)
    net = Sequential(Conv2d(1, 4, 3, padding=1, dtype=np.float32, rng=rng), MaxPool2d(2), ReLU(), Flatten(),
                     Linear(64, 2, dtype=np.float32, rng=rng))
    hist = nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=40,
                     batch_size=8, rng=rng)
    assert not hist.diverged and hist.epoch_loss[-1] < 0.5 * hist.epoch_loss[0]


@pytest.mark.parametrize("channels", [20_000, 10**6])
def test_a_huge_declared_conv_is_refused_before_anything_is_allocated(channels, tmp_path):
    """Conv2d is in the module registry: its declared shapes are checked against the file before it is built."""
    import tracemalloc

    from test_checkpoint import _forge

    conv = {"type": "Conv2d", "config": {"in_channels": channels, "out_channels": channels, "kernel_size": [5, 5],
                                         "stride": [1, 1], "padding": [0, 0], "init": "pytorch", "name": None}}
    arch = {"type": "Sequential", "config": {"layers": [conv, {"type": "MaxPool2d", "config": {
        "kernel_size": [2, 2], "stride": [2, 2]}}, {"type": "Flatten", "config": {}}]}}
    path = _forge(tmp_path / "big.npz", arch, {"0.W": np.zeros((2, 2, 5, 5)), "0.b": np.zeros(2)})
    tracemalloc.start()
    with pytest.raises(nnlab.CheckpointError, match=rf"W should have shape \({channels}, {channels}, 5, 5\)"):
        nnlab.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20  # megabytes, not the terabytes the declared layer would need


def test_make_cnn_builds_the_documented_stack_from_one_generator():
    from nnlab.conv import make_cnn
    net = make_cnn(9, (3, 5), 5, classes=4, in_channels=2, dtype=np.float32, rng=np.random.default_rng(0))
    rng = np.random.default_rng(0)
    by_hand = Sequential(
        Conv2d(2, 3, 5, padding=2, dtype=np.float32, rng=rng, name="conv1"), MaxPool2d(2), ReLU(),
        Conv2d(3, 5, 5, padding=2, dtype=np.float32, rng=rng, name="conv2"), MaxPool2d(2), ReLU(),
        Flatten(), Linear(5 * 2 * 2, 4, dtype=np.float32, rng=rng, name="classifier"))
    assert repr(net) == repr(by_hand)
    assert [m.config() for m in net.layers] == [m.config() for m in by_hand.layers]
    for mine, theirs in zip(net.parameters(), by_hand.parameters()):
        assert mine.value.dtype == np.float32
        np.testing.assert_array_equal(mine.value, theirs.value)
    assert net.forward(np.zeros((3, 2, 9, 9), dtype=np.float32)).shape == (3, 4)


def test_make_cnn_defaults_are_the_documented_ones():
    from nnlab.conv import make_cnn
    net = make_cnn(8, rng=np.random.default_rng(1))
    assert repr(net) == repr(Sequential(
        Conv2d(1, 16, 3, padding=1), MaxPool2d(2), ReLU(), Conv2d(16, 32, 3, padding=1), MaxPool2d(2), ReLU(),
        Flatten(), Linear(32 * 2 * 2, 10)))
    assert net.forward(np.zeros((1, 1, 8, 8))).shape == (1, 10)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"side": 8, "kernel_size": 4}, "make_cnn: kernel_size must be odd (so that padding keeps the size), got 4"),
    ({"side": 3}, "make_cnn: side must be at least 4 (two 2x2 poolings), got 3"),
    ({"side": 4}, None),
    ({"side": 8, "channels": (1,)}, "make_cnn: channels must be an int or a pair of ints, got (1,)"),
    ({"side": 0}, "make_cnn: side must be a positive integer, got 0"),
    ({"side": 8, "kernel_size": 0}, "make_cnn: kernel_size must be a positive integer, got 0"),
    ({"side": 8, "kernel_size": 1}, None),
])
def test_make_cnn_refusals_word_for_word(kwargs, message):
    from nnlab.conv import make_cnn
    if message is None:
        assert make_cnn(**kwargs).forward(np.zeros((1, 1, kwargs["side"], kwargs["side"]))).shape == (1, 10)
        return
    with pytest.raises(nnlab.NnlabValueError) as caught:
        make_cnn(**kwargs)
    assert str(caught.value) == message


def _conv_ran(module, x=None):
    module.forward(np.ones((1, 1, 4, 4)) if x is None else x)
    return module


_CONV = "Conv2d(1 -> 1, kernel (3, 3))"
_POOL = "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Conv2d(0, 1, 3), "Conv2d: in_channels must be a positive integer, got 0"),
    (lambda: Conv2d(1, 0, 3), "Conv2d: out_channels must be a positive integer, got 0"),
    (lambda: Conv2d(1, 1, (3, 3, 3)), "Conv2d: kernel_size must be an int or a pair of ints, got (3, 3, 3)"),
    (lambda: Conv2d(1, 1, 2.5), "Conv2d: kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: Conv2d(1, 1, 0), "Conv2d: kernel_size must be at least 1, got 0"),
    (lambda: Conv2d(1, 1, 3, padding=-1), "Conv2d: padding must be at least 0, got -1"),
    (lambda: Conv2d(1, 1, 3, stride=0), "Conv2d: stride must be at least 1, got 0"),
    (lambda: Conv2d(1, 1, 3, init="x"), "Conv2d: init must be 'pytorch' or 'he', got 'x'"),
    (lambda: Conv2d(1, 1, 3, dtype=np.int32), "Conv2d: dtype must be a float type, got int32"),
    (lambda: Conv2d(1, 1, 3).forward(np.array([[[["a"]]]])), f"{_CONV}: input must hold real numbers, got dtype <U1"),
    (lambda: Conv2d(1, 1, 3).forward(np.ones((1, 2, 4, 4))),
     f"{_CONV}: expected input of shape (batch, 1, height, width), got shape (1, 2, 4, 4)"),
    (lambda: Conv2d(1, 1, 3).forward(np.ones((1, 1, 2, 4))),
     f"{_CONV}: images of 2x4 (padding 0x0) are smaller than the 3x3 kernel"),
    (lambda: _conv_ran(Conv2d(1, 1, 3)).backward(np.array([[[["a", "b"], ["c", "d"]]]])),
     f"{_CONV}: dout must hold real numbers, got dtype <U1"),
    (lambda: _conv_ran(Conv2d(1, 1, 3)).backward(np.ones((1, 1, 3, 3))),
     f"{_CONV}: backward expected dout of shape (1, 1, 2, 2), got (1, 1, 3, 3)"),
    (lambda: _conv_ran(Conv2d(1, 1, 3)).backward(np.array([[[[np.nan, 1.0], [1.0, 1.0]]]])),
     f"{_CONV}: dout holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: MaxPool2d(0), "MaxPool2d: kernel_size must be at least 1, got 0"),
    (lambda: MaxPool2d(2).forward(np.ones((1, 1, 1, 1))),
     f"{_POOL}: images of 1x1 (padding 0x0) are smaller than the 2x2 kernel"),
    (lambda: MaxPool2d(2).forward(np.array([[[["a"]]]])), f"{_POOL}: input must hold real numbers, got dtype <U1"),
    (lambda: _conv_ran(MaxPool2d(2)).backward(np.ones((1, 1, 3, 3))),
     f"{_POOL}: backward expected dout of shape (1, 1, 2, 2), got (1, 1, 3, 3)"),
    (lambda: _conv_ran(MaxPool2d(2)).backward(np.array([[[[np.nan, 1.0], [1.0, 1.0]]]])),
     f"{_POOL}: dout holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: Flatten().forward(np.float64(1)), "Flatten(): expected input of shape (batch, ...), got shape ()"),
    (lambda: Flatten().forward(np.array([["a"]])), "Flatten(): input must hold real numbers, got dtype <U1"),
    (lambda: _conv_ran(Flatten()).backward(np.ones(3)), "Flatten(): backward expected dout of shape (1, 16), got (3,)"),
    (lambda: _conv_ran(Flatten()).backward(np.array([[np.nan] * 16])),
     "Flatten(): dout holds 16 non-finite value(s) (NaN or inf)"),
    (lambda: _conv_ran(Flatten()).backward(np.array([["a"] * 16])),
     "Flatten(): dout must hold real numbers, got dtype <U1"),
    (lambda: Flatten().backward(np.ones(2)), "Flatten(): backward() was called before forward(); run forward(x) first"),
    # each size check reads its own axis's padding and kernel, and the message shows both axes
    (lambda: Conv2d(1, 1, (3, 1), padding=(0, 1)).forward(np.ones((1, 1, 2, 5))),
     "Conv2d(1 -> 1, kernel (3, 1)): images of 2x5 (padding 0x1) are smaller than the 3x1 kernel"),
    (lambda: Conv2d(1, 1, 5, padding=1).forward(np.ones((1, 1, 2, 9))),
     "Conv2d(1 -> 1, kernel (5, 5)): images of 2x9 (padding 1x1) are smaller than the 5x5 kernel"),
    (lambda: Conv2d(1, 1, 5, padding=1).forward(np.ones((1, 1, 9, 2))),
     "Conv2d(1 -> 1, kernel (5, 5)): images of 9x2 (padding 1x1) are smaller than the 5x5 kernel"),
    (lambda: Conv2d(1, 1, 3, name="c1").forward(np.ones((1, 2, 4, 4))),
     "Conv2d 'c1'(1 -> 1, kernel (3, 3)): expected input of shape (batch, 1, height, width), got shape (1, 2, 4, 4)"),
    (lambda: Conv2d(1, 1, 3).forward(np.ones((1, 1, 4, 4), dtype=complex)),
     f"{_CONV}: input must hold real numbers, got dtype complex128"),
    (lambda: _conv_ran(Conv2d(1, 1, 3)).backward(np.ones((1, 1, 2, 2), dtype=complex)),
     f"{_CONV}: dout must hold real numbers, got dtype complex128"),
    (lambda: MaxPool2d(2, stride=0), "MaxPool2d: stride must be at least 1, got 0"),
    (lambda: MaxPool2d(2).forward(np.ones((2, 2))),
     f"{_POOL}: expected input of shape (batch, channels, height, width), got shape (2, 2)"),
    (lambda: MaxPool2d(2).forward(np.array([[[[np.nan, 1.0], [1.0, 1.0]]]])),
     f"{_POOL}: input holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: Flatten().forward(np.array([[np.nan, 1.0, np.inf]])),
     "Flatten(): input holds 2 non-finite value(s) (NaN or inf)"),
])
def test_conv_module_refusals_word_for_word(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


@pytest.mark.parametrize("make", [lambda: Conv2d(1, 2, 3, rng=np.random.default_rng(0)), lambda: MaxPool2d(2)])
def test_a_float64_or_list_dout_through_a_float32_image_batch_gives_a_float32_dx(make):
    module = make()
    out = module.forward(np.random.default_rng(1).normal(size=(2, 1, 4, 4)).astype(np.float32))
    dout = np.ones(out.shape)
    dx = module.backward(dout)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(module.backward(dout.tolist()), dx)
