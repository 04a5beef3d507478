"""Gradients and optimizer steps against PyTorch autograd, float64, on identical weights.

Skipped cleanly where torch is not installed (it is an optional extra: ``.[torch]``).
"""

import numpy as np
import pytest
from torch_twin import torch_twin

import nnlab

torch = pytest.importorskip("torch")


#: every test compares in float64 (the fixture gives torch its default dtype back afterwards)
pytestmark = pytest.mark.usefixtures("float64_torch")


@pytest.mark.parametrize("nonlin", ["relu", "tanh"])
@pytest.mark.parametrize("loss_name", ["mse", "ce"])
def test_gradients_match_torch(nonlin, loss_name, rng):
    net = nnlab.make_mlp([5, 7, 6, 3], nonlin=nonlin, rng=rng)
    tnet = torch_twin(net)
    X = rng.normal(size=(8, 5))
    if loss_name == "mse":
        Y = rng.normal(size=(8, 3))
        loss, tloss = nnlab.MSELoss(), torch.nn.functional.mse_loss
        tY = torch.from_numpy(Y)
    else:
        Y = rng.integers(0, 3, size=8)
        loss, tloss = nnlab.SoftmaxCrossEntropyLoss(), torch.nn.functional.cross_entropy
        tY = torch.from_numpy(Y)
    tx = torch.from_numpy(X).requires_grad_(True)
    tl = tloss(tnet(tx), tY)
    tl.backward()
    value, grad = loss(net.forward(X), Y)
    dx = net.backward(grad)
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    tparams = [t for m in tnet if isinstance(m, torch.nn.Linear) for t in (m.weight, m.bias)]
    for p, t in zip(net.parameters(), tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_handout_functions_match_torch(rng):
    z = rng.normal(size=(6, 4))
    tz = torch.from_numpy(z)
    np.testing.assert_allclose(nnlab.softmax(z), torch.softmax(tz, dim=1).numpy(), rtol=1e-12)
    y = rng.integers(0, 4, size=6)
    ce = nnlab.cross_entropy(nnlab.softmax(z), nnlab.one_hot(y, 4, dtype=np.float64))
    assert ce == pytest.approx(torch.nn.functional.cross_entropy(tz, torch.from_numpy(y)).item(), rel=1e-9)


@pytest.mark.parametrize("which", ["sgd", "momentum", "adam"])
def test_optimizer_trajectories_match_torch(which, rng):
    net = nnlab.make_mlp([4, 6, 2], nonlin="tanh", rng=rng)
    tnet = torch_twin(net)
    tparams = [t for m in tnet if isinstance(m, torch.nn.Linear) for t in (m.weight, m.bias)]
    if which == "adam":
        opt = nnlab.Adam(net.parameters(), lr=0.01)
        topt = torch.optim.Adam(tparams, lr=0.01)  # torch would also decay biases
    else:
        momentum = 0.9 if which == "momentum" else 0.0
        opt = nnlab.SGD(net.parameters(), lr=0.1, momentum=momentum)
        topt = torch.optim.SGD(tparams, lr=0.1, momentum=momentum)
    X, Y = rng.normal(size=(10, 4)), rng.normal(size=(10, 2))
    loss = nnlab.MSELoss()
    for _ in range(20):
        _, grad = loss(net.forward(X), Y)
        net.backward(grad)
        opt.step()
        topt.zero_grad()
        torch.nn.functional.mse_loss(tnet(torch.from_numpy(X)), torch.from_numpy(Y)).backward()
        topt.step()
    for p, t in zip(net.parameters(), tparams):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-9, atol=1e-12)
