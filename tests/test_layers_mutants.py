"""Behaviour of ``nnlab.layers`` that a mutation run found no test for (issue 17).

Each test pins one promise of the module protocol or one refusal, word for word; the mutants
it was written against are named in its docstring.  Small arrays only: every mutant runs these.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

import nnlab
from nnlab import Linear, ReLU, Sequential
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import MODULE_TYPES, Module, build, describe, register_module

# --- registry, describe / build ---------------------------------------------------------------------------------


def test_registering_a_second_class_under_a_taken_name_is_refused_and_keeps_the_first():
    impostor = type("Linear", (Module,), {})
    with pytest.raises(NnlabValueError) as caught:
        register_module(impostor)
    assert str(caught.value) == "register_module: a different class is already registered as 'Linear'"
    assert MODULE_TYPES["Linear"] is Linear


def test_describing_an_unregistered_module_lists_the_registered_classes():
    class Unlisted(Module):
        pass

    with pytest.raises(NnlabTypeError) as caught:
        describe(Unlisted())
    names = sorted(MODULE_TYPES)
    assert {"Linear", "ReLU", "Sequential", "Tanh"} <= set(names)
    assert str(caught.value) == ("cannot describe a Unlisted: register its class with nnlab.layers.register_module "
                                 f"(registered: {', '.join(names)})")


def test_a_record_without_a_training_flag_builds_a_module_in_training_mode():
    config = {"in_dim": 2, "out_dim": 3, "init": "xavier", "name": None}
    assert build({"type": "Linear", "config": config}).training is True
    assert build({"type": "Linear", "config": config, "training": False}).training is False


def test_from_config_draws_its_placeholder_weights_from_seed_0_and_leaves_the_global_state_alone():
    """Rebuilding is reproducible and does not move ``np.random`` (the handout's code seeds it)."""
    config = {"in_dim": 3, "out_dim": 2, "init": "he", "name": "enc"}
    np.random.seed(7)
    before = np.random.get_state()
    first, second = Linear.from_config(config), Linear.from_config(config, np.float32)
    after = np.random.get_state()
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2] == before[2]
    np.testing.assert_array_equal(first.W, Linear(3, 2, init="he", rng=np.random.default_rng(0)).W)
    np.testing.assert_array_equal(second.W, first.W.astype(np.float32))
    assert first.name == "enc" and second.W.dtype == np.float32


@pytest.mark.parametrize(("config", "error", "message"), [
    ({"in_dim": 0, "out_dim": 2}, NnlabValueError, "Linear: in_dim must be a positive integer, got 0"),
    ({"in_dim": 2, "out_dim": -1}, NnlabValueError, "Linear: out_dim must be a positive integer, got -1"),
    ({"in_dim": 2, "out_dim": "3"}, NnlabTypeError, "Linear: out_dim must be a positive integer, got '3'"),
])
def test_linear_state_spec_refuses_a_bad_record_word_for_word(config, error, message):
    with pytest.raises(error) as caught:
        Linear.state_spec(config)
    assert str(caught.value) == message


def test_sequential_state_spec_refuses_layers_that_are_not_a_list():
    with pytest.raises(NnlabTypeError) as caught:
        Sequential.state_spec({"layers": {"0": {}}})
    assert str(caught.value) == "Sequential: config 'layers' must be a list, got dict"


def test_save_keeps_the_extra_record(tmp_path):
    path = Linear(2, 1, rng=np.random.default_rng(0)).save(tmp_path / "m.npz", extra={"classes": ["a", "b"]})
    _, extra = nnlab.load_checkpoint(path)
    assert extra == {"classes": ["a", "b"]}


# --- state dicts and gradient buffers ---------------------------------------------------------------------------


def test_load_state_dict_names_the_expected_and_the_given_arrays():
    lin = Linear(2, 1)
    with pytest.raises(NnlabValueError) as caught:
        lin.load_state_dict({"W": np.zeros((1, 2)), "bias": np.zeros(1)})
    assert str(caught.value) == "load_state_dict: expected arrays ['W', 'b'], got ['W', 'bias']"


def test_load_state_dict_resets_the_gradients_to_zeros_of_each_parameters_shape(rng):
    lin = Linear(3, 2, rng=rng)
    lin.forward(rng.normal(size=(4, 3)))
    lin.backward(rng.normal(size=(4, 2)))
    lin.load_state_dict({"W": np.ones((2, 3)), "b": np.ones(2)})
    for grad, value in ((lin.dW, lin.W), (lin.db, lin.b)):
        assert type(grad) is np.ndarray and grad.shape == value.shape and grad.dtype == value.dtype
        assert not grad.any()


def test_a_bias_gradient_buffer_of_another_length_is_replaced(rng):
    """Same dtype and strides as ``b`` but the wrong length: backward still fills a buffer of ``b``'s shape."""
    lin = Linear(3, 2, rng=rng)
    lin.db = np.zeros(5)
    lin.forward(np.ones((4, 3)))
    lin.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(lin.db, [4.0, 4.0])



def test_linear_marks_its_weight_and_not_its_bias_for_decay_with_bools():
    """``Param.decay`` is a bool (a user filtering ``p.decay == False`` must find the bias)."""
    flags = [(p.name, p.grad_name, p.decay) for p in Linear(2, 1).parameters()]
    assert flags == [("W", "dW", True), ("b", "db", False)]



@pytest.mark.parametrize(("bias", "got"), [([0.0, 0.0], "a list"), (np.zeros(1), "shape (1,), dtype float64"),
                                           (np.zeros(2, dtype=np.int64), "shape (2,), dtype int64")])
def test_a_reassigned_bias_of_the_wrong_type_shape_or_dtype_is_named_at_forward(bias, got):
    """Not broadcast, not added as integers: a bias that is not a float array of shape (out_dim,) is refused."""
    lin = Linear(3, 2)
    lin.b = bias
    with pytest.raises(NnlabValueError) as caught:
        lin.forward(np.ones((4, 3)))
    assert str(caught.value) == (f"Linear(3 -> 2): b must be a float array of shape (2,), got {got} (assign an "
                                 "array of that shape, e.g. np.array(..., dtype=float), or build a new Linear for "
                                 "other widths)")


# --- checked faces: input types, float32 arithmetic, warnings ---------------------------------------------------


def test_linear_refuses_complex_input_and_dout_word_for_word():
    lin = Linear(2, 3)
    with pytest.raises(NnlabTypeError) as caught:
        lin.forward(np.ones((1, 2), dtype=complex))
    assert str(caught.value) == "Linear(2 -> 3): input must hold real numbers, got dtype complex128"
    lin.forward(np.ones((1, 2)))
    with pytest.raises(NnlabTypeError) as caught:
        lin.backward(np.ones((1, 3), dtype=np.complex64))
    assert str(caught.value) == "Linear(2 -> 3): dout must hold real numbers, got dtype complex64"


def test_a_float32_batch_through_a_float64_layer_gives_what_the_layers_float32_copy_gives():
    """The bias is cast with the weights: 1 + b rounds once in float32, never through float64 first."""
    bias = 2.0**-24 + 2.0**-50  # float32(1 + bias) = 1 + 2**-23, but 1 + float32(bias) = 1 (a tie, to even)
    wide = Linear(1, 1)
    wide.W[...], wide.b[...] = 1.0, bias
    narrow = Linear(1, 1, dtype=np.float32)
    narrow.W[...], narrow.b[...] = 1.0, bias
    x = np.ones((1, 1), dtype=np.float32)
    out = wide.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, narrow.forward(x))
    assert out[0, 0] == np.float32(1.0)



def test_a_float32_backward_makes_no_float64_copy_of_dout():
    """float32 is for speed and memory: the backward's peak allocation stays below the size of ``dout`` itself
    (a float64 copy of it would be twice that).  Deterministic: tracemalloc counts NumPy's buffers, not time."""
    lin = Linear(1, 64, dtype=np.float32, rng=np.random.default_rng(0))
    x, dout = np.ones((4096, 1), np.float32), np.ones((4096, 64), np.float32)
    lin.forward(x)
    lin.backward(dout)  # warm the cached constants
    lin.forward(x)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        lin.backward(dout)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert peak < dout.nbytes
    np.testing.assert_array_equal(lin.db, np.full(64, 4096, np.float32))

def _overflowing_chain():
    """Linear(2, 2) as the identity, then Linear(2, 1) with weights 1e308: x of order 1 overflows in the second."""
    first, second = Linear(2, 2), Linear(2, 1, name="out")
    first.W[...], first.b[...] = np.eye(2), 0.0
    second.W[...], second.b[...] = 1e308, 0.0
    return Sequential(first, second)


def _diverged_chain():
    """As above, but the second layer's weights are inf: inf - inf in its product is NaN (an invalid operation)."""
    chain = _overflowing_chain()
    chain[1].W[...] = np.inf
    return chain


def _ones(lin):
    """``lin`` with every weight 1: an input [inf, -inf] then gives inf - inf = NaN, an invalid operation."""
    lin.W[...] = 1.0
    return lin


def _no_warning_then(call):
    with np.errstate(all="warn"), warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: _overflowing_chain()[1].forward(np.array([[10.0, 10.0]])), "Linear 'out'(2 -> 1): the result overflowed"),
    (lambda: _ones(Linear(2, 1)).forward(np.array([[np.inf, -np.inf]])), "Linear(2 -> 1): input holds 2 non-finite"),
    (lambda: _overflowing_chain().forward(np.array([[10.0, 10.0]])), "Sequential: the result overflowed"),
    (lambda: _diverged_chain().forward(np.array([[1.0, -1.0]])), "Sequential: parameter out.W holds NaN/inf"),
])
def test_a_non_finite_forward_is_one_error_and_no_numpy_warning(call, message):
    """The scan reports an overflow or a NaN; NumPy's RuntimeWarning is silenced (an error under ``-W error``)."""
    with pytest.raises(nnlab.NnlabValueError) as caught:
        _no_warning_then(call)
    assert str(caught.value).startswith(message)


def _ran(module, x):
    module.forward(x)
    return module


@pytest.mark.parametrize("make", [lambda: Linear(2, 2), lambda: Sequential(Linear(2, 2))])
def test_backward_overflow_or_nan_gives_inf_or_nan_gradients_without_a_numpy_warning(make):
    """Backward does not scan its results (the next forward's scan reports a divergence); it never warns either."""
    module = _ran(make(), np.array([[1e300, 1.0]]))
    dx = _no_warning_then(lambda: module.backward(np.array([[1e10, 1.0]])))  # dW[0, 0] = 1e310: overflow
    lin = module if isinstance(module, Linear) else module[0]
    assert np.isinf(lin.dW[0, 0]) and np.isfinite(dx).all()
    lin.W[...] = np.inf
    dx = _no_warning_then(lambda: module.backward(np.array([[1.0, -1.0]])))  # inf - inf: an invalid operation
    assert np.isnan(dx).all()


# --- names in messages ------------------------------------------------------------------------------------------


class _Pair(Module):
    """A container with named (not numbered) parts."""

    def __init__(self):
        self.encoder, self.decoder = Linear(2, 3), Linear(3, 1, name="head")

    def named_children(self):
        return [("encoder", self.encoder), ("decoder", self.decoder)]


def test_named_arrays_name_each_part_by_its_name_else_its_position_else_its_key():
    chain = Sequential(Linear(2, 3, name="enc"), ReLU(), Linear(3, 2), Sequential(Linear(2, 1)))
    names = [name for name, _ in chain.named_arrays()]
    assert names == ["enc.W", "enc.b", "layer 2.W", "layer 2.b", "layer 3.layer 0.W", "layer 3.layer 0.b"]
    assert [name for name, _ in _Pair().named_arrays()] == ["encoder.W", "encoder.b", "head.W", "head.b"]
    assert chain.named_arrays()[2][1] is chain[2].W


def test_a_diverged_weight_deep_in_a_chain_is_named_by_its_position():
    chain = Sequential(Linear(2, 2), ReLU(), Sequential(Linear(2, 2), Linear(2, 1)))
    chain[2][1].W[...] = np.nan
    with pytest.raises(nnlab.NnlabValueError) as caught:
        chain.forward(np.ones((1, 2)))
    assert str(caught.value).startswith("Sequential: parameter layer 2.layer 1.W holds NaN/inf")


# --- a mis-sized input inside a chain ---------------------------------------------------------------------------


class _Total(Module):
    """Sums its input to one number (a 0-d array): no width at all for the next layer."""

    def _forward(self, x, inplace=False):
        return np.asarray(x.sum())


def _mis_sized_chain():
    chain = Sequential(Linear(3, 4), ReLU(), Linear(4, 1))
    chain.layers[2] = Linear(5, 1)  # swapped in after the chain checked its widths
    return chain


@pytest.mark.parametrize(("chain", "x", "message"), [
    (_mis_sized_chain, np.ones((2, 3)),
     "Linear(5 -> 1): expected input of width 5, got shape (2, 4) (the layer before it gives 4 columns)"),
    (_mis_sized_chain, np.ones(3),
     "Linear(5 -> 1): expected input of width 5, got shape (4,) (the layer before it gives 4 columns)"),
    (lambda: Sequential(_Total(), Linear(1, 1)), np.ones((2, 3)),
     "Linear(1 -> 1): expected input of width 1, got shape () (the layer before it gives 0 columns)"),
])
def test_a_layer_fed_the_wrong_width_inside_a_chain_says_what_it_got_word_for_word(chain, x, message):
    with pytest.raises(NnlabValueError) as caught:
        chain().forward(x)
    assert str(caught.value) == message


def test_predict_through_an_empty_chain_returns_its_input_as_floats():
    np.testing.assert_array_equal(nnlab.train.predict(Sequential(), [[1, 2], [3, 4]]), [[1.0, 2.0], [3.0, 4.0]])


# --- what the checked faces and the chain tell each core --------------------------------------------------------


class _Spy(Module):
    """Passes arrays through (copies) and records the permissions its core was given."""

    def __init__(self, keeps_output):
        self.keeps_output = keeps_output
        self.forward_flags, self.backward_flags = [], []

    def _forward(self, x, inplace="omitted"):
        self.forward_flags.append(inplace)
        return x.copy()

    def _backward(self, dout, inplace="omitted", need_dx="omitted"):
        self.backward_flags.append((inplace, need_dx))
        return dout.copy()


def test_the_checked_faces_forbid_in_place_work_and_ask_for_dx_explicitly():
    spy = _Spy(keeps_output=False)
    spy.forward(np.ones((2, 2)))
    spy.backward(np.ones((2, 2)))
    assert spy.forward_flags == [False] and spy.backward_flags == [(False, True)]


def test_a_chain_lets_a_module_work_in_place_exactly_when_the_array_is_its_own():
    """Forward: in place on an output nobody keeps, never on the caller's x.  Backward: never on the caller's
    dout, always on a dx the chain made; the first module skips dx when the caller needs none."""
    a, b, c = _Spy(keeps_output=False), _Spy(keeps_output=True), _Spy(keeps_output=False)
    chain = Sequential(Linear(2, 2), a, b, c)
    x = np.ones((3, 2))
    chain.forward(x)
    assert [a.forward_flags, b.forward_flags, c.forward_flags] == [[True], [True], [False]]
    chain.backward(np.ones((3, 2)))
    assert [a.backward_flags, b.backward_flags, c.backward_flags] == [[(True, True)], [(True, True)], [(False, True)]]

    spies = [_Spy(keeps_output=False), _Spy(keeps_output=False)]
    chain = Sequential(*spies)
    chain._forward(x, False)
    chain._forward(x, True)
    assert spies[0].forward_flags == [False, True] and spies[1].forward_flags == [True, True]
    chain._backward(np.ones((3, 2)), False, False)
    assert [s.backward_flags for s in spies] == [[(True, False)], [(False, True)]]
