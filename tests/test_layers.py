"""Linear, ReLU, Tanh and Sequential through the module protocol."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlab
from nnlab import Linear, ReLU, Sequential, Tanh
from nnlab.errors import NnlabValueError


def test_linear_shapes_and_init(rng):
    lin = Linear(in_dim=5, out_dim=3, rng=rng)
    assert lin.W.shape == (3, 5) and lin.b.shape == (3,)
    assert lin.dW.shape == (3, 5) and lin.db.shape == (3,)
    assert np.all(lin.b == 0)
    limit = math.sqrt(6 / 8)
    assert np.all(np.abs(lin.W) <= limit)
    assert lin.W.dtype == np.float64 and lin.x is None


def test_xavier_variance_matches_theory():
    lin = Linear(400, 600, rng=np.random.default_rng(0))
    # uniform(-a, a) has variance a^2 / 3 = 2 / (in + out)
    assert abs(lin.W.var() - 2 / 1000) / (2 / 1000) < 0.02


def test_he_init_limit():
    lin = Linear(50, 10, init="he", rng=np.random.default_rng(0))
    assert np.abs(lin.W).max() <= math.sqrt(6 / 50)
    assert np.abs(lin.W).max() > math.sqrt(6 / 60)


def test_global_seed_makes_handout_code_repeatable():
    np.random.seed(42)
    a = Linear(3, 2).W
    np.random.seed(42)
    b = Linear(3, 2).W
    np.testing.assert_array_equal(a, b)


def test_forward_is_x_WT_plus_b(rng):
    lin = Linear(4, 2, rng=rng)
    lin.b[:] = [1.0, -2.0]
    x = rng.normal(size=(6, 4))
    np.testing.assert_allclose(lin.forward(x), x @ lin.W.T + lin.b)
    assert lin.x is x


def test_backward_formulas(rng):
    lin = Linear(4, 3, rng=rng)
    x = rng.normal(size=(5, 4))
    dout = rng.normal(size=(5, 3))
    lin.forward(x)
    dx = lin.backward(dout)
    np.testing.assert_allclose(lin.dW, dout.T @ x)
    np.testing.assert_allclose(lin.db, dout.sum(axis=0))
    np.testing.assert_allclose(dx, dout @ lin.W)


def test_backward_accepts_flat_list_for_single_row(rng):
    lin = Linear(3, 2, rng=rng)
    lin.forward(np.array([[1.0, 2.0, 3.0]]))
    dx = lin.backward([0.5, -1.0])
    assert dx.shape == (1, 3)
    np.testing.assert_allclose(lin.dW, np.outer([0.5, -1.0], [1.0, 2.0, 3.0]))


def test_single_row_input_gives_single_row_output(rng):
    lin = Linear(3, 2, rng=rng)
    out = lin.forward(np.array([1.0, 2.0, 3.0]))
    assert out.shape == (2,)
    assert lin.backward(np.ones(2)).shape == (3,)


def test_backward_twice_sets_not_accumulates(rng):
    net = Sequential(Linear(3, 4, rng=rng), Tanh(), Linear(4, 2, rng=rng))
    x = rng.normal(size=(5, 3))
    dout = rng.normal(size=(5, 2))
    net.forward(x)
    net.backward(dout)
    first = [p.grad.copy() for p in net.parameters()]
    net.backward(dout)
    for a, p in zip(first, net.parameters()):
        np.testing.assert_array_equal(a, p.grad)


def test_wrong_width_names_layer_width_and_shape():
    lin = Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear\(3 -> 2\): expected input of width 3, got shape \(4, 5\)"):
        lin.forward(np.ones((4, 5)))


def test_three_d_input_is_rejected():
    with pytest.raises(ValueError, match="width 3"):
        Linear(3, 2).forward(np.ones((2, 2, 3)))


@pytest.mark.parametrize("module", [Linear(3, 2), ReLU(), Tanh(), Sequential(Linear(3, 2), ReLU())])
def test_backward_before_forward_is_a_runtime_error(module):
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((1, 2)))


def test_backward_with_wrong_dout_shape(rng):
    lin = Linear(3, 2, rng=rng)
    lin.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"dout of shape \(4, 2\), got \(4, 3\)"):
        lin.backward(np.ones((4, 3)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_dim"):
        Linear(0, 2)
    with pytest.raises(TypeError, match="out_dim"):
        Linear(2, 2.5)
    with pytest.raises(ValueError, match="init"):
        Linear(2, 2, init="zeros")
    with pytest.raises(TypeError, match="Sequential"):
        Sequential(Linear(2, 2), "relu")


def test_float32_stays_float32_through_forward_and_backward(rng):
    net = nnlab.make_mlp([4, 8, 3], dtype=np.float32, rng=rng)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    out = net.forward(x)
    dx = net.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in net.parameters())


def test_float32_input_through_float64_layer_is_not_upcast(rng):
    lin = Linear(3, 2, rng=rng)
    x = np.ones((4, 3), dtype=np.float32)
    out = lin.forward(x)
    assert out.dtype == np.float32
    assert lin.backward(np.ones((4, 2), dtype=np.float32)).dtype == np.float32
    assert lin.dW.dtype == np.float64  # gradients match their parameters


def test_integer_input_becomes_float64():
    assert Linear(2, 1).forward(np.array([[1, 2]])).dtype == np.float64


def test_astype_converts_parameters(rng):
    net = nnlab.make_mlp([2, 3, 1], rng=rng).astype(np.float32)
    assert net.dtype == np.float32


def test_repr_is_readable():
    assert repr(Linear(3, 2)) == "Linear(in_dim=3, out_dim=2, dtype=float64)"
    assert "ReLU()" in repr(Sequential(Linear(3, 2), ReLU()))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**31 - 1)
)
def test_stacked_linear_layers_are_one_linear_map(d_in, d_hidden, d_out, batch, seed):
    """Handout Stage 2: two Linear layers equal one with W = W2 @ W1, b = W2 @ b1 + b2."""
    rng = np.random.default_rng(seed)
    lin1, lin2 = Linear(d_in, d_hidden, rng=rng), Linear(d_hidden, d_out, rng=rng)
    lin1.b[:] = rng.normal(size=d_hidden)
    lin2.b[:] = rng.normal(size=d_out)
    x = rng.normal(size=(batch, d_in))
    collapsed = Linear(d_in, d_out)
    collapsed.W = lin2.W @ lin1.W
    collapsed.b = lin2.W @ lin1.b + lin2.b
    np.testing.assert_allclose(lin2.forward(lin1.forward(x)), collapsed.forward(x), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 4), st.integers(1, 5), st.sampled_from(["relu", "tanh"]),
       st.integers(0, 2**31 - 1))
def test_every_module_passes_gradcheck_for_random_shapes(d_in, d_hidden, d_out, batch, nonlin, seed):
    rng = np.random.default_rng(seed)
    net = nnlab.make_mlp([d_in, d_hidden, d_out], nonlin=nonlin, rng=rng)
    result = nnlab.gradcheck(net, rng.normal(size=(batch, d_in)), seed=seed)
    assert result.passed, str(result)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_deep_sequential_gradcheck(depth, rng):
    sizes = [3] + [5] * depth + [2]
    assert nnlab.gradcheck(nnlab.make_mlp(sizes, nonlin="tanh", rng=rng), rng.normal(size=(4, 3))).passed


def test_train_and_eval_reach_every_part(rng):
    model = nnlab.MLP(3, 4, 2, rng=rng)
    net = nnlab.Sequential(nnlab.Linear(2, 3, rng=rng), nnlab.Sequential(nnlab.ReLU(), nnlab.Linear(3, 3, rng=rng)))
    for m in (model, net):
        assert m.eval() is m
        parts = [m, *[c for _, c in m.named_children()]]
        parts += [g for _, c in m.named_children() for _, g in c.named_children()]
        assert not any(p.training for p in parts)
        m.train()
        assert all(p.training for p in parts)


def test_state_dict_names_and_live_arrays(rng):
    net = nnlab.make_mlp([3, 4, 2], rng=rng)
    state = net.state_dict()
    assert list(state) == ["0.W", "0.b", "2.W", "2.b"]
    assert state["0.W"] is net.layers[0].W
    model = nnlab.MLP(3, 4, 2, rng=rng)
    assert list(model.state_dict()) == ["l1.W", "l1.b", "l2.W", "l2.b"]
    twin = nnlab.MLP(3, 4, 2, rng=np.random.default_rng(99))
    twin.load_state_dict({k: v.copy() for k, v in model.state_dict().items()})
    x = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(twin.forward(x)[0], model.forward(x)[0])
    with pytest.raises(nnlab.NnlabValueError, match="should have shape"):
        twin.load_state_dict({**model.state_dict(), "l1.W": np.zeros((2, 2))})


def _overflowing_linear(**kwargs):
    lin = Linear(1, 1, rng=np.random.default_rng(0), **kwargs)
    lin.W[...] = 1e308
    return lin


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Linear(0, 2), "Linear: in_dim must be a positive integer, got 0"),
    (lambda: Linear(2, 0), "Linear: out_dim must be a positive integer, got 0"),
    (lambda: Linear(2, 2, dtype=np.int64), "Linear: dtype must be a float type, got int64"),
    (lambda: Linear(2, 3, name="enc").forward(np.ones((1, 5))),
     "Linear 'enc'(2 -> 3): expected input of width 2, got shape (1, 5)"),
    (lambda: Linear(1, 1).forward(np.array([[np.nan]])), "Linear(1 -> 1): input holds 1 non-finite"),
    (lambda: _overflowing_linear().forward(np.array([[1e308]])), "Linear(1 -> 1): the result overflowed"),
    (lambda: Sequential(Linear(1, 1), _overflowing_linear()).forward(np.array([[1e3]])),
     "Sequential: the result overflowed"),
    (lambda: ReLU().forward(np.array([[np.inf, 1.0]])), "ReLU(): input holds 1 non-finite"),
    (lambda: Tanh().forward(np.array([[np.inf, 1.0]])), "Tanh(): input holds 1 non-finite"),
    (lambda: Sequential().forward(np.array(["a"])), "Sequential: input must hold real numbers, got dtype <U1"),
    (lambda: Sequential().backward(np.array(["a"])), "Sequential: dout must hold real numbers, got dtype <U1"),
    (lambda: Sequential(Linear(1, 1), "x"), "Sequential: layer 1 must be an nnlab Module, got str"),
])
def test_every_layer_refusal_names_the_layer_and_the_argument(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value).startswith(message)


def test_a_module_without_a_core_says_what_to_implement():
    class Bare(nnlab.Module):
        pass

    with pytest.raises(NotImplementedError, match=r"^Bare must implement _forward\(x, inplace=False\)$"):
        Bare().forward(np.ones((1, 1)))
    with pytest.raises(NotImplementedError, match=r"^Bare must implement _backward\(dout, inplace=False"):
        Bare().backward(np.ones((1, 1)))


def test_an_empty_chain_passes_its_input_through(rng):
    x = rng.normal(size=(2, 3))
    np.testing.assert_array_equal(Sequential().forward(x), x)
    np.testing.assert_array_equal(Sequential().backward(x), x)


def test_a_single_layer_chain_and_a_list_chain(rng):
    lin = Linear(2, 2, rng=rng)
    assert Sequential(lin).layers == [lin] and Sequential([lin, ReLU()]).layers[0] is lin


def test_calling_a_module_is_its_forward(rng):
    lin, x = Linear(3, 2, rng=rng), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(lin(x), lin.forward(x))


@pytest.mark.parametrize("module", [ReLU, Tanh, lambda: Sequential(Tanh(), ReLU()), lambda: Sequential(ReLU(), Tanh())])
def test_activation_backward_leaves_the_callers_dout_alone(module, rng):
    act, dout = module(), rng.normal(size=(4, 3))
    kept = dout.copy()
    act.forward(rng.normal(size=(4, 3)))
    act.backward(dout)
    np.testing.assert_array_equal(dout, kept)


@pytest.mark.parametrize("layers", [
    lambda rng: [Tanh(), Tanh()],
    lambda rng: [Tanh(), ReLU()],
    lambda rng: [Linear(3, 3, rng=rng), Tanh(), Tanh(), Linear(3, 2, rng=rng)],
])
def test_a_module_after_a_tanh_never_overwrites_the_output_tanh_keeps(layers, rng):
    """Tanh's backward reads its own output: the activation after it must not overwrite that output in place."""
    net = Sequential(*layers(rng))
    assert nnlab.gradcheck(net, rng.normal(size=(4, 3))).passed


def test_the_repr_of_a_chain_lists_one_layer_per_line():
    expected = "Sequential(\n  Linear(in_dim=1, out_dim=2, dtype=float64),\n  ReLU()\n)"
    assert repr(Sequential(Linear(1, 2), ReLU())) == expected
    assert repr(Linear(1, 2).parameters()[0]) == "Param(Linear.W, shape=(2, 1))"


def test_eval_sets_training_to_false_exactly(rng):
    net = nnlab.make_mlp([2, 3, 1], rng=rng)
    assert net.eval().training is False and all(layer.training is False for layer in net)


def test_astype_converts_the_gradients_too(rng):
    net = nnlab.make_mlp([2, 3, 1], rng=rng).astype(np.float32)
    assert all(p.grad.dtype == np.float32 for p in net.parameters())


@pytest.mark.parametrize("spoil", [
    lambda g: [0.0] * g.size,  # not an array
    lambda g: np.zeros(g.size),  # another shape
    lambda g: g.astype(np.float32),  # another dtype
    lambda g: np.asfortranarray(g) if g.flags.c_contiguous else np.ascontiguousarray(g),  # another layout
    lambda g: np.lib.stride_tricks.as_strided(g, writeable=False),  # read-only
])
def test_an_unusable_gradient_buffer_is_replaced_by_zeros_of_the_parameters_layout(spoil, rng):
    lin = Linear(3, 2, rng=rng)
    lin.dW = spoil(np.ones_like(lin.W))
    weight = lin.parameters()[0]
    weight.ensure_grad_buffer()
    assert type(lin.dW) is np.ndarray and lin.dW.shape == (2, 3) and lin.dW.dtype == np.float64
    assert lin.dW.strides == lin.W.strides and lin.dW.flags.writeable and not lin.dW.any()


@pytest.mark.parametrize("name", ["dW", "db"])
@pytest.mark.parametrize("spoil", [
    lambda g: [0.0] * g.size,  # not an array
    lambda g: np.zeros(g.size + 1),  # another shape
    lambda g: g.astype(np.float32),  # another dtype
    lambda g: g.astype(np.int64),  # another dtype of the same strides
    lambda g: g[:, ::-1] if g.ndim == 2 else g[::-1],  # another layout (strides)
    lambda g: np.lib.stride_tricks.as_strided(g, writeable=False),  # read-only
], ids=["list", "shape", "float32", "int64", "strides", "read-only"])
def test_backward_replaces_an_unusable_gradient_buffer_and_writes_the_right_gradient(name, spoil, rng):
    """The check backward runs on every call (not only ensure_grad_buffer called by hand) finds each spoilt buffer."""
    lin, twin = Linear(3, 2, rng=rng), Linear(3, 2)
    twin.load_state_dict(lin.state_dict())
    setattr(lin, name, spoil(np.ones_like(getattr(lin, name))))
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    for layer in (lin, twin):
        layer.forward(x)
        layer.backward(dout)
    grad = getattr(lin, name)
    assert type(grad) is np.ndarray and grad.flags.writeable
    assert grad.strides == getattr(lin, name[1:]).strides and grad.dtype == np.float64
    np.testing.assert_array_equal(grad, getattr(twin, name))


def test_a_usable_gradient_buffer_is_kept(rng):
    lin = Linear(3, 2, rng=rng)
    buffer = lin.dW
    lin.parameters()[0].ensure_grad_buffer()
    assert lin.dW is buffer


def test_a_chain_of_mis_sized_linear_layers_is_refused_when_built():
    with pytest.raises(NnlabValueError, match=r"layer 2, Linear\(5 -> 1\), expects 5 inputs but layer 0 gives 4"):
        nnlab.Sequential(nnlab.Linear(3, 4), nnlab.ReLU(), nnlab.Linear(5, 1))


@pytest.mark.parametrize("value, got", [(np.zeros((3, 2)), r"shape \(3, 2\), dtype float64"),
                                        ([[1.0, 0, 0], [0, 1.0, 0]], "a list"),
                                        (np.zeros((2, 3), dtype=int), r"shape \(2, 3\), dtype int64")])
def test_a_reassigned_weight_of_the_wrong_shape_or_type_is_named_at_forward(value, got):
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    lin.W = value
    with pytest.raises(NnlabValueError, match=rf"Linear\(3 -> 2\): W must be a float array of shape \(2, 3\), "
                                              rf"got {got}"):
        lin.forward(np.ones((4, 3)))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("name", ["W", "b"])
def test_a_masked_or_matrix_parameter_is_named_at_forward(name):
    """ndarray subclasses whose arithmetic differs: a masked W gave a raw broadcast error, a matrix W matrix output."""
    for make, got in ((np.ma.masked_array, "a MaskedArray"), (np.matrix, "a matrix")):
        lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
        setattr(lin, name, make(getattr(lin, name)))
        with pytest.raises(NnlabValueError, match=rf"Linear\(3 -> 2\): {name} must be a float array .*, got {got} "):
            lin.forward(np.ones((4, 3)))


def test_a_memory_mapped_weight_computes_as_a_plain_array(tmp_path):
    """np.memmap is an ndarray subclass that multiplies like one: loading weights that way keeps working."""
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    mapped = np.memmap(tmp_path / "W.bin", dtype=np.float64, mode="w+", shape=(2, 3))
    mapped[:] = lin.W
    x = np.arange(12.0).reshape(4, 3)
    expected = lin.forward(x)
    lin.W = mapped
    np.testing.assert_array_equal(lin.forward(x), expected)
    # the handout's single 1-D row too (a non-plain W goes through the full parameter check, which admits 1-D x)
    np.testing.assert_array_equal(lin.forward(x[1]), expected[1])


def test_a_mis_sized_layer_inside_a_model_is_named_at_forward():
    model = nnlab.MLP(3, 4, 2, rng=np.random.default_rng(0))
    model.l1.W = np.zeros((4, 5))
    with pytest.raises(NnlabValueError, match=r"Linear 'l1'\(3 -> 4\): W must be .* \(4, 3\), got shape \(4, 5\)"):
        model.forward(np.ones((2, 3)))
    chain = nnlab.Sequential(nnlab.Linear(3, 4), nnlab.ReLU(), nnlab.Linear(4, 1))
    chain.layers[2] = nnlab.Linear(5, 1)
    with pytest.raises(NnlabValueError, match=r"Linear\(5 -> 1\): expected input of width 5, got shape \(2, 4\)"):
        chain.forward(np.ones((2, 3)))



def test_a_linear_inside_a_chain_refuses_a_3d_input_as_its_own_forward_does():
    """After a module of any shape, a 3-D batch of width in_dim is refused, not multiplied along its last axis."""
    chain = nnlab.Sequential(nnlab.ReLU(), nnlab.Linear(2, 1))
    with pytest.raises(NnlabValueError) as caught:
        chain.forward(np.ones((3, 4, 2)))
    assert str(caught.value) == ("Linear(2 -> 1): expected input of width 2, got shape (3, 4, 2) "
                                 "(the layer before it gives 2 columns)")

class _Double(nnlab.Module):
    """The smallest user module: ``2 x``, relying on Module's own checks."""

    def __repr__(self):
        return "_Double()"

    def _forward(self, x, inplace=False):
        return 2 * x

    def _backward(self, dout, inplace=False, need_dx=True):
        return 2 * dout


def _ran(module, x):
    module.forward(x)
    return module


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Linear(2, 3).forward(np.array([["a", "b"]])),
     "Linear(2 -> 3): input must hold real numbers, got dtype <U1"),
    (lambda: _ran(Linear(2, 3), np.ones((1, 2))).backward(np.array([["a", "b", "c"]])),
     "Linear(2 -> 3): dout must hold real numbers, got dtype <U1"),
    (lambda: _ran(Linear(2, 3), np.ones((1, 2))).backward(np.array([[1.0, np.nan, 1.0]])),
     "Linear(2 -> 3): dout holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: _ran(Linear(2, 3), np.ones(2)).backward(np.ones(2)),
     "Linear(2 -> 3): backward expected dout of shape (3,), got (2,)"),
    (lambda: ReLU().forward(np.array(["a"])), "ReLU(): input must hold real numbers, got dtype <U1"),
    (lambda: _ran(ReLU(), np.ones((2, 2))).backward(np.array([["a", "b"], ["c", "d"]])),
     "ReLU(): dout must hold real numbers, got dtype <U1"),
    (lambda: _ran(Tanh(), np.ones((2, 2))).backward(np.array([[1.0, np.nan], [1.0, 1.0]])),
     "Tanh(): dout holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: _ran(ReLU(), np.ones((2, 2))).backward(np.ones(3)),
     "ReLU(): backward expected dout of shape (2, 2), got (3,)"),
    (lambda: Sequential().forward(np.array(["a"])), "Sequential: input must hold real numbers, got dtype <U1"),
    (lambda: Sequential(ReLU(), Linear(2, 3)).forward(np.array([["a", "b"]])),
     "ReLU(): input must hold real numbers, got dtype <U1"),
    (lambda: Sequential(Linear(2, 3)).forward(np.ones((1, 5))),
     "Linear(2 -> 3): expected input of width 2, got shape (1, 5)"),
    (lambda: _ran(_Double(), np.ones(2)).backward(np.array(["a", "b"])),
     "_Double(): dout must hold real numbers, got dtype <U1"),
    (lambda: _ran(_Double(), np.ones(2)).backward(np.array([np.inf, 1.0])),
     "_Double(): dout holds 1 non-finite value(s) (NaN or inf)"),
])
def test_layer_refusals_word_for_word(call, message):
    """Each check names the module and the argument; NumPy's own errors would name neither."""
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


def test_linear_takes_lists_for_input_and_dout(rng):
    lin = Linear(2, 3, rng=rng)
    np.testing.assert_allclose(lin.forward([[1.0, 2.0]]), lin.forward(np.array([[1.0, 2.0]])))
    dx = lin.backward([[1.0, 0.0, -1.0]])
    np.testing.assert_allclose(dx, np.array([[1.0, 0.0, -1.0]]) @ lin.W)
    lin.forward(np.array([1.0, 2.0]))  # the handout's single row, and a list for its dout
    assert lin.backward([1.0, 0.0, -1.0]).shape == (2,)


def test_an_empty_sequential_passes_its_input_through():
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(Sequential().forward(x), x)


def test_a_float64_dout_through_a_float32_batch_gives_a_float32_dx(rng):
    lin = Linear(2, 3, rng=rng)
    lin.forward(np.ones((4, 2), dtype=np.float32))
    dx = lin.backward(rng.normal(size=(4, 3)))
    assert dx.dtype == np.float32
    assert lin.dW.dtype == lin.W.dtype == np.float64


def test_a_gradient_buffer_of_the_wrong_dtype_is_replaced(rng):
    lin = Linear(2, 3, rng=rng)
    lin.dW = np.zeros((3, 2), dtype=np.float32)
    lin.forward(rng.normal(size=(4, 2)))
    lin.backward(rng.normal(size=(4, 3)))
    assert lin.dW.dtype == np.float64


def test_eval_puts_every_part_in_evaluation_mode():
    net = Sequential(Linear(2, 2), ReLU())
    assert net.eval() is net
    assert net.training is False and all(m.training is False for m in net.layers)


def test_sequential_backward_never_writes_the_callers_dout(rng):
    net = Sequential(Linear(3, 4, rng=rng), ReLU(), Linear(4, 2, rng=rng), Tanh())
    net.forward(rng.normal(size=(5, 3)))
    dout = rng.normal(size=(5, 2))
    before = dout.copy()
    net.backward(dout)
    np.testing.assert_array_equal(dout, before)


@pytest.mark.parametrize(("x", "dout"), [
    (np.ones((1, 2)), [[1.0, np.nan, 1.0]]),  # a list
    (np.ones((1, 2)), np.array([[1.0, np.inf, 1.0]], dtype=np.float32)),  # another dtype than the batch
    (np.ones(2), np.array([1.0, np.nan, 1.0])),  # the handout's single row
], ids=["list", "float32", "one-row"])
def test_a_non_finite_dout_is_refused_on_every_path_of_the_check(x, dout):
    """The usual call (a batch, dout of its dtype) has a check of its own; these go through the general one."""
    with pytest.raises(NnlabValueError, match=r"^Linear\(2 -> 3\): dout holds 1 non-finite value\(s\)"):
        _ran(Linear(2, 3), x).backward(dout)


@pytest.mark.parametrize(("x", "dout", "want"), [
    (np.ones(3), np.ones((3, 2)), "(2,)"),  # one row: dout must be one row too, even when it is in_dim tall
    (np.ones((4, 3)), np.ones((3, 2)), "(4, 2)"),  # a batch of 4: a dout as tall as in_dim is not one
], ids=["one-row", "batch"])
def test_a_dout_shaped_like_the_weights_transposed_is_refused(x, dout, want):
    """A dout of shape (in_dim, out_dim) matches nothing: the usual call's shortcut must compare the batch."""
    with pytest.raises(NnlabValueError, match=rf"backward expected dout of shape \{want[:-1]}\), got \(3, 2\)"):
        _ran(Linear(3, 2), x).backward(dout)


def test_linear_refuses_a_masked_input_with_masked_entries():
    """np.asarray drops the mask: the -999 sentinel under it was multiplied in as data."""
    lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
    masked = np.ma.masked_values(np.array([[1.0, -999.0, 2.0]]), -999.0)
    with pytest.raises(NnlabValueError, match=r"Linear\(3 -> 2\): input is a masked array with 1 masked value\(s\)"
                       r".*fill or drop them first"):
        lin.forward(masked)
    nothing_masked = np.ma.masked_values(np.array([[1.0, 3.0, 2.0]]), -999.0)
    np.testing.assert_array_equal(lin.forward(nothing_masked), lin.forward(nothing_masked.data))


@pytest.mark.parametrize("dtype, given", [(int, "int64"), (complex, "complex128"),
                                          ("bogus", "'bogus', which is not a NumPy data type")])
def test_astype_refuses_what_is_not_a_float_type(dtype, given):
    """Linear(3, 2, dtype=int) is refused; .astype(int) was accepted and the next forward blamed the user's W,
    and .astype('bogus') raised NumPy's raw TypeError."""
    net = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    with pytest.raises(nnlab.NnlabTypeError, match=r"^Sequential.astype: dtype must be a float type \(np.float32 or "
                       rf"np.float64\), got {given}$"):
        net.astype(dtype)
    assert net.dtype == np.float64
