"""Conv2d, MaxPool2d and Flatten against PyTorch in float64, on identical weights and inputs.

Tolerances: ``rtol=1e-10, atol=1e-12`` -- float64 rounding of sums of at most a few hundred
products (``torch`` and the GEMM add them in different orders) stays near 1e-15; a wrong
index, stride or offset is off by order 1.
"""

import numpy as np
import pytest

import nnlab
from nnlab import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-10, "atol": 1e-12}

# (N, C, H, W, out_channels, kernel_size, stride, padding)
CASES = [
    (2, 1, 6, 6, 3, 3, 1, 0),
    (2, 3, 7, 6, 4, 3, 1, 1),
    (3, 2, 9, 8, 5, (3, 2), (2, 1), (1, 0)),
    (4, 3, 10, 11, 2, (2, 4), (3, 2), (2, 1)),
    (1, 1, 5, 5, 2, 5, 1, 2),
    (2, 4, 12, 12, 6, 5, 2, 2),
    (2, 2, 8, 5, 3, (1, 3), (1, 1), (0, 1)),
    (3, 3, 28, 28, 8, 5, 1, 2),
]


pytestmark = pytest.mark.usefixtures("float64_torch")  # compare in float64; float32 again afterwards


def _torch_conv(conv: Conv2d):
    twin = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(conv.W))
        twin.bias.copy_(torch.from_numpy(conv.b))
    return twin


@pytest.mark.parametrize("block_bytes", [1 << 20, 1], ids=["one block", "one image per block"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_forward_and_gradients_match_torch(case, block_bytes, rng):
    n, c, h, w, o, k, s, p = case
    conv = Conv2d(c, o, k, stride=s, padding=p, rng=rng)
    conv.col_block_bytes = block_bytes
    twin = _torch_conv(conv)
    x = rng.normal(size=(n, c, h, w))
    tx = torch.from_numpy(x).requires_grad_(True)
    tout = twin(tx)
    dout = rng.normal(size=tuple(tout.shape))
    tout.backward(torch.from_numpy(dout))
    out = conv.forward(x)
    dx = conv.backward(dout)
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)
    np.testing.assert_allclose(conv.dW, twin.weight.grad.numpy(), **TOL)
    np.testing.assert_allclose(conv.db, twin.bias.grad.numpy(), **TOL)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), (2, 3)])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct values", "ties"])
def test_maxpool2d_matches_torch(kernel, stride, ties, rng):
    x = rng.normal(size=(2, 3, 9, 8))
    if ties:  # rounded and rectified: many windows hold the maximum twice, or are all zero
        x = np.maximum(np.round(x), 0.0)
    pool = MaxPool2d(kernel, stride)
    twin = torch.nn.MaxPool2d(kernel, stride)
    tx = torch.from_numpy(x).requires_grad_(True)
    tout = twin(tx)
    dout = rng.normal(size=tuple(tout.shape))
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(pool.forward(x), tout.detach().numpy())
    dx, tdx = pool.backward(dout), tx.grad.numpy()
    np.testing.assert_array_equal(dx != 0, tdx != 0)  # every gradient routed to the same position
    np.testing.assert_allclose(dx, tdx, **TOL)  # (overlapping windows add in another order)


def test_small_cnn_loss_and_every_gradient_match_torch(rng):
    net = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), MaxPool2d(2), ReLU(), Conv2d(4, 6, 3, padding=1, rng=rng),
                     MaxPool2d(2), ReLU(), Flatten(), Linear(6 * 2 * 2, 5, rng=rng))
    twin_layers = []
    for m in net:
        if isinstance(m, Conv2d):
            twin_layers.append(_torch_conv(m))
        elif isinstance(m, Linear):
            lin = torch.nn.Linear(m.in_dim, m.out_dim)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(m.W))
                lin.bias.copy_(torch.from_numpy(m.b))
            twin_layers.append(lin)
        else:
            twin_layers.append({MaxPool2d: lambda: torch.nn.MaxPool2d(2), ReLU: torch.nn.ReLU,
                                Flatten: torch.nn.Flatten}[type(m)]())
    twin = torch.nn.Sequential(*twin_layers)
    x, y = rng.normal(size=(6, 1, 8, 8)), rng.integers(0, 5, size=6)
    tx = torch.from_numpy(x).requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(twin(tx), torch.from_numpy(y))
    tloss.backward()
    value, grad = nnlab.SoftmaxCrossEntropyLoss()(net.forward(x), y)
    dx = net.backward(grad)
    assert value == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)
    tparams = [t for m in twin if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for t in (m.weight, m.bias)]
    for p, t in zip(net.parameters(), tparams, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), **TOL)


def test_pytorch_initialisation_has_torchs_distribution():
    """Same bound as torch.nn.Conv2d's default: the largest |weight| of many draws approaches 1/sqrt(fan_in)."""
    conv = Conv2d(3, 300, 3, rng=np.random.default_rng(0))
    twin = torch.nn.Conv2d(3, 300, 3)
    bound = 1 / np.sqrt(3 * 9)
    for ours, theirs in ((conv.W, twin.weight), (conv.b, twin.bias)):
        theirs = theirs.detach().numpy()
        assert abs(np.abs(ours).max() - np.abs(theirs).max()) < 0.02 * bound
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        assert abs(ours.std() - theirs.std()) < 0.1 * theirs.std()
