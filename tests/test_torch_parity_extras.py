"""The components beyond the handout against PyTorch, in float64, from identical weights and data.

BatchNorm1d (outputs, input and parameter gradients, running statistics over several
training steps, then evaluation mode), Dropout with the same mask, the activations and
their gradients, RMSprop / AdamW / Nesterov SGD trajectories, the two schedules, and
clip_grad_norm.  The tolerances are the ones each comparison achieves with room for
rounding (printed in the commit report), not loosened until something passes.
"""

import contextlib

import numpy as np
import pytest
from torch_twin import as_tensor as _t
from torch_twin import torch_twin as _torch_twin

import nnlab

torch = pytest.importorskip("torch")

#: Agreement of single forward/backward computations (a few roundings apart).
EXACT = dict(rtol=1e-12, atol=1e-14)
#: Agreement after 30 optimizer steps (measured: within 1e-13 relative; rounding grows with the steps).
TRAJECTORY = dict(rtol=1e-12, atol=1e-14)


#: every test compares in float64 (the fixture gives torch its default dtype back afterwards)
pytestmark = pytest.mark.usefixtures("float64_torch")


def _torch_params(tnet):
    """Torch parameters in nnlab's order (each module's weight, then its bias)."""
    return [p for m in tnet for p in (getattr(m, "weight", None), getattr(m, "bias", None)) if p is not None]


# --- BatchNorm1d ------------------------------------------------------------------------------------------

def test_batchnorm_matches_torch_over_training_steps_then_in_evaluation(rng):
    c = 5
    bn = nnlab.BatchNorm1d(c, momentum=0.3)
    bn.gamma[:] = rng.normal(size=c)
    bn.beta[:] = rng.normal(size=c)
    tbn = _torch_twin(nnlab.Sequential(bn))[0]
    for step in range(6):
        x = rng.normal(loc=step, scale=1 + step, size=(8 + step, c))
        dout = rng.normal(size=x.shape)
        tx = _t(x).requires_grad_(True)
        tout = tbn(tx)
        tout.backward(_t(dout))
        out = bn.forward(x)
        dx = bn.backward(dout)
        np.testing.assert_allclose(out, tout.detach().numpy(), **EXACT)
        np.testing.assert_allclose(dx, tx.grad.numpy(), **EXACT)
        np.testing.assert_allclose(bn.dgamma, tbn.weight.grad.numpy(), **EXACT)
        np.testing.assert_allclose(bn.dbeta, tbn.bias.grad.numpy(), **EXACT)
        np.testing.assert_allclose(bn.running_mean, tbn.running_mean.numpy(), **EXACT)
        np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), **EXACT)
        with torch.no_grad():  # move gamma and beta the same way in both, so that later steps use new values
            tbn.weight -= 0.1 * tbn.weight.grad
            tbn.bias -= 0.1 * tbn.bias.grad
        tbn.zero_grad()
        bn.gamma -= 0.1 * bn.dgamma
        bn.beta -= 0.1 * bn.dbeta
    bn.eval()
    tbn.eval()
    x, dout = rng.normal(size=(4, c)), rng.normal(size=(4, c))
    tx = _t(x).requires_grad_(True)
    tout = tbn(tx)
    tout.backward(_t(dout))
    np.testing.assert_allclose(bn.forward(x), tout.detach().numpy(), **EXACT)
    np.testing.assert_allclose(bn.backward(dout), tx.grad.numpy(), **EXACT)


# --- Dropout ----------------------------------------------------------------------------------------------

class _Draws:
    def __init__(self, u):
        self.u = u

    def random(self, size, dtype=np.float64):
        return self.u.astype(dtype)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_with_torchs_mask_matches_torch(p, rng):
    x, dout = rng.normal(size=(20, 30)), rng.normal(size=(20, 30))
    torch.manual_seed(0)
    tx = _t(x).requires_grad_(True)
    tout = torch.nn.functional.dropout(tx, p=p, training=True)
    tout.backward(_t(dout))
    kept = tout.detach().numpy() != 0  # x is never exactly 0, so a zero output is a dropped value
    drop = nnlab.Dropout(p, rng=_Draws(np.where(kept, 1.0, 0.0)))  # u >= p exactly where torch kept
    np.testing.assert_allclose(drop.forward(x), tout.detach().numpy(), **EXACT)
    np.testing.assert_allclose(drop.backward(dout), tx.grad.numpy(), **EXACT)
    np.testing.assert_array_equal(drop.eval().forward(x), torch.nn.functional.dropout(_t(x), p, False).numpy())


# --- activations ------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "sigmoid": (nnlab.Sigmoid(), torch.nn.Sigmoid()),
    "leaky_relu": (nnlab.LeakyReLU(), torch.nn.LeakyReLU()),
    "leaky_relu(0.2)": (nnlab.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    "leaky_relu(-0.3)": (nnlab.LeakyReLU(-0.3), torch.nn.LeakyReLU(-0.3)),
    "gelu": (nnlab.GELU(), torch.nn.GELU()),
    "gelu(tanh)": (nnlab.GELU("tanh"), torch.nn.GELU(approximate="tanh")),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_and_gradient_match_torch(name, rng):
    module, tmodule = ACTIVATIONS[name]
    x = np.concatenate([rng.normal(scale=3, size=40), [0.0, -0.0, 1e-300, -40.0, 40.0, -800.0, 800.0]]).reshape(1, -1)
    dout = rng.normal(size=x.shape)
    tx = _t(x).requires_grad_(True)
    tout = tmodule(tx)
    tout.backward(_t(dout))
    # atol: GELU's small negative tail, where PyTorch's 1 + erf / 1 + tanh cancels its digits away and nnlab
    # keeps them (test_activations.py checks nnlab's tail against 50-digit arithmetic)
    np.testing.assert_allclose(module.forward(x), tout.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(module.backward(dout), tx.grad.numpy(), rtol=1e-13, atol=1e-15)


# --- optimizers -------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "rmsprop": (lambda p: nnlab.RMSprop(p, lr=0.01),
                lambda decay, rest, wd: torch.optim.RMSprop([{"params": decay}, {"params": rest}], lr=0.01)),
    "rmsprop+decay+momentum": (
        lambda p: nnlab.RMSprop(p, lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.8),
        lambda decay, rest, wd: torch.optim.RMSprop([{"params": decay, "weight_decay": 0.1},
                                                     {"params": rest, "weight_decay": 0.0}],
                                                    lr=0.005, alpha=0.9, eps=1e-6, momentum=0.8)),
    "adamw": (lambda p: nnlab.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda decay, rest, wd: torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                                         {"params": rest, "weight_decay": 0.0}], lr=0.01)),
    "adamw-defaults": (lambda p: nnlab.AdamW(p),
                       lambda decay, rest, wd: torch.optim.AdamW([{"params": decay},
                                                                  {"params": rest, "weight_decay": 0.0}])),
    "nesterov": (lambda p: nnlab.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                 lambda decay, rest, wd: torch.optim.SGD([{"params": decay, "weight_decay": 0.01},
                                                          {"params": rest, "weight_decay": 0.0}],
                                                         lr=0.05, momentum=0.9, nesterov=True)),
}


@pytest.mark.parametrize("which", OPTIMIZERS)
def test_optimizer_trajectories_match_torch(which, rng):
    """30 steps on a batch-normalised net: weights decay (where the optimizer decays), gamma, beta, biases do not."""
    net = nnlab.make_mlp([4, 6, 5, 2], nonlin="tanh", norm="batch", rng=rng)
    tnet = _torch_twin(net)
    tparams = _torch_params(tnet)
    decay = [t for p, t in zip(net.parameters(), tparams) if p.decay]
    rest = [t for p, t in zip(net.parameters(), tparams) if not p.decay]
    make, tmake = OPTIMIZERS[which]
    opt, topt = make(net.parameters()), tmake(decay, rest, None)
    into_bn = {a for a, b in zip(net, net[1:]) if isinstance(b, nnlab.BatchNorm1d)}
    starts = [p.value.copy() for p in net.parameters()]
    X, Y = rng.normal(size=(16, 4)), rng.normal(size=(16, 2))
    loss = nnlab.MSELoss()
    for _ in range(30):
        _, grad = loss(net.forward(X), Y)
        net.backward(grad)
        opt.step()
        topt.zero_grad()
        torch.nn.functional.mse_loss(tnet(_t(X)), _t(Y)).backward()
        topt.step()
    for p, t, start in zip(net.parameters(), tparams, starts):
        if p.owner in into_bn and p.name == "b":
            # A bias feeding batch normalisation has gradient exactly 0; both libraries move it by rounding
            # noise alone (an adaptive step divides that noise by its own size), so each is compared with 0.
            assert np.abs(p.value - start).max() < 1e-9 and np.abs(t.detach().numpy() - start).max() < 1e-9
            continue
        np.testing.assert_allclose(p.value, t.detach().numpy(), **TRAJECTORY)
    bns = [m for m in net if isinstance(m, nnlab.BatchNorm1d)]
    tbns = [m for m in tnet if isinstance(m, torch.nn.BatchNorm1d)]
    for bn, tbn in zip(bns, tbns):
        np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), **TRAJECTORY)


# --- schedules --------------------------------------------------------------------------------------------

SCHEDULES = {
    "step": (lambda o: nnlab.StepLR(o, step_size=7, gamma=0.5),
             lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "cosine": (lambda o: nnlab.CosineAnnealingLR(o, T_max=40),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40)),
    "cosine-eta_min": (lambda o: nnlab.CosineAnnealingLR(o, T_max=25, eta_min=0.01),
                       lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=25, eta_min=0.01)),
}
#: PyTorch updates the rate recursively (each epoch's rate from the last); nnlab uses the closed form. The two
#: agree to rounding (measured: within 4e-14 relative over 150 epochs).
SCHEDULE_TOL = dict(rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("which", SCHEDULES)
def test_schedule_rates_match_torch_over_many_epochs(which):
    lin = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    opt = nnlab.SGD(lin.parameters(), lr=0.3)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    make, tmake = SCHEDULES[which]
    sched, tsched = make(opt), tmake(topt)
    rates, trates = [sched.get_last_lr()[0]], [tsched.get_last_lr()[0]]
    for _ in range(150):  # the cosine ones go through their minimum and back up, several times
        topt.step()
        sched.step()
        tsched.step()
        rates.append(sched.get_last_lr()[0])
        trates.append(tsched.get_last_lr()[0])
        assert opt.lr == rates[-1]
    np.testing.assert_allclose(rates, trates, **SCHEDULE_TOL)


# --- gradient clipping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_clip_grad_norm_matches_torch(scale, rng):
    net = nnlab.make_mlp([5, 7, 3], rng=rng)
    for p in net.parameters():
        p.grad[...] = scale * rng.normal(size=p.grad.shape)
    tparams = [_t(p.value.copy()).requires_grad_(True) for p in net.parameters()]
    for p, t in zip(net.parameters(), tparams):
        t.grad = _t(p.grad.copy())
    total = nnlab.clip_grad_norm(net.parameters(), max_norm=1.5)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm=1.5)
    assert total == pytest.approx(ttotal.item(), rel=1e-14)
    for p, t in zip(net.parameters(), tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-14, atol=0)


# --- a trained model in evaluation mode -------------------------------------------------------------------

def _trained_network(rng):
    """A batch-normalised network with dropout, trained a little (its running statistics are not the initial ones)."""
    net = nnlab.make_mlp([4, 8, 6, 3], dropout=0.5, norm="batch", rng=rng)
    X = rng.normal(loc=1.0, scale=2.0, size=(40, 4))
    nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X,
              rng.integers(0, 3, size=40), epochs=3, batch_size=8, rng=rng)
    return net, X


def _predict_matches_torch_in_evaluation_mode(net, X):
    tnet = _torch_twin(net).eval()
    with torch.no_grad():
        expected = tnet(_t(X)).numpy()
    np.testing.assert_allclose(nnlab.train.predict(net, X), expected, **EXACT)


def test_predict_of_a_trained_network_matches_torch_in_evaluation_mode(rng):
    """``predict`` switches off dropout and normalises with the running statistics, as ``model.eval()`` does."""
    net, X = _trained_network(rng)
    assert all(m.training for m in net)  # the caller's mode, given back by fit
    _predict_matches_torch_in_evaluation_mode(net, X)


# --- planted bugs: each comparison above fails on a plausible mistake -------------------------------------

_bn_backward, _bn_forward, _dropout_forward = nnlab.BatchNorm1d._backward, nnlab.BatchNorm1d._forward, \
    nnlab.Dropout._forward


def _simplified_backward(self, dout, inplace=False, need_dx=True):
    """BatchNorm's common mistake: ``dx = dout * gamma / std``, as if the batch statistics were constants."""
    _bn_backward(self, dout.copy(), inplace=False, need_dx=False)  # dgamma and dbeta stay right
    return dout * self.gamma * self._inv_std


def _biased_running_var(self, x, inplace=False):
    """The running variance moved towards the *biased* batch variance (the one used to normalise)."""
    before, var = self.running_var.copy(), x.var(axis=0)
    out = _bn_forward(self, x, inplace)
    if self.training:
        self.running_var[...] = (1 - self.momentum) * before + self.momentum * var
    return out


def _decay_through_the_gradient(self):
    """AdamW's decay added to the gradient (Adam with L2), so that Adam's scaling divides it."""
    self._adam_step(self.weight_decay)


def _gelu_slope_without_second_term(x, dout, approximate="none", out=None):
    """GELU's derivative as ``Phi(x)`` alone, the ``x phi(x)`` term forgotten."""
    import scipy.special

    return np.multiply(dout, scipy.special.ndtr(x), out=out)


def _unscaled_mask(self, x, inplace=False):
    """Dropout that zeroes values but forgets to scale the kept ones by ``1 / (1 - p)``."""
    out = _dropout_forward(self, x.copy(), inplace=False)
    if self.mask is not None:
        self.mask = (self.mask != 0).astype(x.dtype)
        out = x * self.mask
    return out


@contextlib.contextmanager
def _mode_left_alone(module, training):
    """A ``predict`` that never switches the model's mode: a model left in training mode predicts in it."""
    yield module


PLANTED = {
    "batchnorm: simplified backward": (
        nnlab.BatchNorm1d, "_backward", _simplified_backward,
        lambda rng: test_batchnorm_matches_torch_over_training_steps_then_in_evaluation(rng)),
    "batchnorm: biased running variance": (
        nnlab.BatchNorm1d, "_forward", _biased_running_var,
        lambda rng: test_batchnorm_matches_torch_over_training_steps_then_in_evaluation(rng)),
    "adamw: decay through the gradient": (
        nnlab.AdamW, "step", _decay_through_the_gradient,
        lambda rng: test_optimizer_trajectories_match_torch("adamw", rng)),
    "gelu: derivative without x phi(x)": (
        nnlab.activations, "gelu_backward_core", _gelu_slope_without_second_term,
        lambda rng: test_activation_and_gradient_match_torch("gelu", rng)),
    "dropout: unscaled mask": (
        nnlab.Dropout, "_forward", _unscaled_mask,
        lambda rng: test_dropout_with_torchs_mask_matches_torch(0.5, rng)),
}


@pytest.mark.parametrize("bug", PLANTED)
def test_each_planted_bug_fails_its_torch_comparison(bug, monkeypatch, rng):
    """The comparisons can fail: with one mistake planted, the comparison that covers it raises."""
    owner, name, wrong, check = PLANTED[bug]
    check(np.random.default_rng(1234))  # passes as written
    monkeypatch.setattr(owner, name, wrong)
    with pytest.raises(AssertionError):
        check(rng)


def test_gradcheck_catches_the_gelu_slope_without_its_second_term(monkeypatch, rng):
    """The float64 gradient check catches the GELU mistake too (BatchNorm's: tests/test_normalization.py)."""
    x = rng.normal(size=(3, 5))
    assert nnlab.gradcheck(nnlab.GELU(), x).passed
    monkeypatch.setattr(nnlab.activations, "gelu_backward_core", _gelu_slope_without_second_term)
    wrong = nnlab.gradcheck(nnlab.GELU(), x)
    assert not wrong.passed and wrong.errors["input"] > 0.01


def test_predict_in_training_mode_fails_the_torch_comparison(monkeypatch, rng):
    """Planted: ``predict`` without its switch to evaluation mode (dropout draws, batch statistics)."""
    net, X = _trained_network(rng)
    _predict_matches_torch_in_evaluation_mode(net, X)
    monkeypatch.setattr(nnlab.train, "mode", _mode_left_alone)
    with pytest.raises(AssertionError):
        _predict_matches_torch_in_evaluation_mode(net, X)
