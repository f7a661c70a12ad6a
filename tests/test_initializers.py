"""The initialisation schemes of the recurrent layers (``init=``; rnnkit.initializers)."""

import numpy as np
import pytest

import rnnkit
from rnnkit import initializers
from rnnkit.models import LanguageModel

H, D = 6, 4


def test_default_is_pytorchs_uniform_and_unchanged():
    """The default draws W_x then W_h from U(+-1/sqrt(H)) per direction, biases zero, the
    LSTM's forget bias 1 (the draws of every layer made before ``init`` existed)."""
    layer = rnnkit.LSTM(D, H, num_layers=2, rng=3)
    rng = np.random.default_rng(3)
    k = 1 / np.sqrt(H)
    for layer_k, D_k in ((0, D), (1, H)):
        np.testing.assert_array_equal(layer.params[f"l{layer_k}.W_x"],
                                      rng.uniform(-k, k, (D_k, 4 * H)).astype(np.float32))
        np.testing.assert_array_equal(layer.params[f"l{layer_k}.W_h"],
                                      rng.uniform(-k, k, (H, 4 * H)).astype(np.float32))
        b = layer.params[f"l{layer_k}.b"]
        assert (b[H : 2 * H] == 1).all() and (np.delete(b, np.s_[H : 2 * H]) == 0).all()
    assert layer.config()["init"] == {"name": "default"}


def test_glorot_orthogonal():
    layer = rnnkit.GRU(D, H, init="glorot_orthogonal", rng=0, dtype=np.float64)
    limit = np.sqrt(6 / (D + 3 * H))
    assert np.abs(layer.params["l0.W_x"]).max() <= limit
    assert np.abs(layer.params["l0.W_x"]).max() > 0.8 * limit
    W_h = layer.params["l0.W_h"]
    for g in range(3):
        block = W_h[:, g * H : (g + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
    assert not layer.params["l0.b"].any() and not layer.params["l0.b_hn"].any()
    lstm = rnnkit.LSTM(D, H, init="glorot_orthogonal", rng=0)
    assert (lstm.params["l0.b"][H : 2 * H] == 1).all()  # Keras' unit_forget_bias


def test_identity_is_irnn():
    layer = rnnkit.RNN(D, H, nonlinearity="relu", init={"name": "identity", "scale": 0.5},
                       rng=0, dtype=np.float64)
    np.testing.assert_array_equal(layer.params["l0.W_h"], 0.5 * np.eye(H))
    assert np.abs(layer.params["l0.W_x"]).std() < 0.003
    assert not layer.params["l0.b"].any()
    assert layer.config()["init"] == {"name": "identity", "scale": 0.5}


def test_uniform_is_char_rnns():
    layer = rnnkit.LSTM(D, H, init={"name": "uniform", "range": 0.08}, rng=0)
    b = layer.params["l0.b"]
    others = [layer.params["l0.W_x"], layer.params["l0.W_h"], np.delete(b, np.s_[H : 2 * H])]
    for v in others:
        assert 0.06 < np.abs(v).max() <= 0.08 + 1e-7
    assert (b[H : 2 * H] == 1).all()  # then the forget bias, as char-rnn sets it
    assert initializers.parse("uniform") == {"name": "uniform", "range": 0.08}


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
def test_chrono_biases(cls):
    T_max = 50
    layer = cls(D, 200, init={"name": "chrono", "t_max": T_max}, rng=0, dtype=np.float64)
    b = layer.params["l0.b"]
    H2 = 200
    keep = b[H2 : 2 * H2]  # LSTM f, GRU z: the share of the state that is kept
    assert keep.min() >= 0 and keep.max() <= np.log(T_max - 1)
    # log(U(1, T_max - 1)): its exponential is uniform on [1, T_max - 1]
    assert abs(np.exp(keep).mean() - T_max / 2) < 3
    if cls is rnnkit.LSTM:
        np.testing.assert_array_equal(b[:H2], -keep)
        assert not b[2 * H2 :].any()
    else:
        assert not b[:H2].any() and not b[2 * H2 :].any()


def test_seeded_and_saved(tmp_path):
    a = rnnkit.LSTM(D, H, init="glorot_orthogonal", rng=7)
    b = rnnkit.LSTM(D, H, init="glorot_orthogonal", rng=7)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    model = LanguageModel(11, hidden_size=H, init={"name": "chrono", "t_max": 30}, rng=0)
    assert model.rnn.init == {"name": "chrono", "t_max": 30.0}
    model.save(tmp_path / "m.npz")
    loaded, _, _ = rnnkit.models.load_model(tmp_path / "m.npz")
    assert loaded.rnn.init == {"name": "chrono", "t_max": 30.0}
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], loaded.params[k])


def test_bad_schemes_name_the_argument():
    with pytest.raises(ValueError, match="init must be one of default, glorot_orthogonal"):
        rnnkit.LSTM(D, H, init="xavier")
    with pytest.raises(ValueError, match="init 'uniform': range must be a finite number > 0"):
        rnnkit.LSTM(D, H, init={"name": "uniform", "range": -1})
    with pytest.raises(ValueError, match="init 'chrono' needs t_max"):
        rnnkit.GRU(D, H, init="chrono")
    with pytest.raises(ValueError, match="this layer is a RNN"):
        rnnkit.RNN(D, H, init={"name": "chrono", "t_max": 10})
    with pytest.raises(ValueError, match="init 'default' takes no argument, got scale"):
        rnnkit.RNN(D, H, init={"name": "default", "scale": 2})
    with pytest.raises(ValueError, match="identity:VALUE needs a number"):
        initializers.parse("identity:big")
    assert initializers.parse("chrono:100") == {"name": "chrono", "t_max": 100.0}
