"""rnnkit.onnx: every exported graph passes ``onnx.checker`` and, run in ONNX Runtime, gives
rnnkit's own outputs to 1e-5 in float32: layers of every kind and form (several layers,
bidirectional with every merge, lengths, given, zero and learned initial states), the
language model's step graph over 50 carried steps and its sequence graph, the classifier's
poolings, the tagger, and the encoder and decoder step of Seq2Seq (a whole greedy decode).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import KIND_IDS, LAYER_KINDS, make_layer, random_state

import rnnkit
from rnnkit.cli import main
from rnnkit.data import Vocab
from rnnkit.models import (
    LanguageModel,
    Seq2Seq,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from rnnkit.onnx import export  # noqa: E402  (after the skip: it needs onnx)

TOL = 1e-5  # float32, largest absolute difference
B, T, D, H = 4, 7, 3, 5
LENGTHS = np.array([7, 4, 1, 6])


def session(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path, **feeds):
    """Outputs of the graph at path by name."""
    s = session(path)
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds), strict=True))


def close(got, want, what=""):
    diff = float(np.abs(np.asarray(got, dtype=np.float64) - want).max())
    assert diff <= TOL, f"{what}: largest difference {diff:.2e}"


def randomized(model, seed=0, scale=0.3):
    """The model (eval mode) with every parameter moved off its initialisation (biases too),
    but padding rows, which stay zero."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p += rng.uniform(-scale, scale, p.shape).astype(p.dtype)
    for m in model.modules.values():
        if getattr(m, "padding_idx", None) is not None:
            m.params["W"][m.padding_idx] = 0
    return model.eval()


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def state_feeds(state):
    return {"h0": state[0], "c0": state[1]} if isinstance(state, tuple) else {"h0": state}


def check_state(res, state, what):
    close(res["h_n"], state[0] if isinstance(state, tuple) else state, what + " h_n")
    if isinstance(state, tuple):
        close(res["c_n"], state[1], what + " c_n")


# --------------------------------------------------------------------------- layers
LAYER_FORMS = {
    "one": dict(),
    "deep-bi-concat": dict(num_layers=2, bidirectional=True),
    "bi-sum": dict(bidirectional=True, merge="sum"),
    "deep-bi-mul": dict(num_layers=2, bidirectional=True, merge="mul"),
    "bi-ave-nobias": dict(bidirectional=True, merge="ave", bias=False),
    "three-last": dict(num_layers=3, return_sequences=False),
}


@pytest.mark.parametrize("form", list(LAYER_FORMS))
@pytest.mark.parametrize("cls, kw", LAYER_KINDS, ids=KIND_IDS)
def test_layer_with_lengths_and_state(tmp_path, cls, kw, form):
    layer = make_layer(cls, kw, D, H, dtype=np.float32, **LAYER_FORMS[form]).eval()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    state = random_state(layer, B, rng)
    lengths = np.array([7, 0, 1, 5])  # an empty sequence keeps its initial state
    out, final, _ = layer.forward(x, state, lengths=lengths)
    path = export(layer, tmp_path / "layer.onnx", lengths=True)["layer"]
    res = run(path, x=x, lengths=lengths, **state_feeds(state))
    close(res["y"], out, "y")
    check_state(res, final, "layer")
    # without lengths: every step is valid
    out, final, _ = layer.forward(x, state)
    res = run(export(layer, tmp_path / "full.onnx")["layer"], x=x, **state_feeds(state))
    close(res["y"], out, "y")
    check_state(res, final, "full")


@pytest.mark.parametrize("initial", ["zeros", "learned"])
@pytest.mark.parametrize("cls, kw", LAYER_KINDS, ids=KIND_IDS)
def test_layer_with_its_own_initial_state(tmp_path, cls, kw, initial):
    layer = make_layer(cls, kw, D, H, dtype=np.float32, num_layers=2, bidirectional=True,
                       initial_state=initial).eval()
    x = np.random.default_rng(2).normal(size=(B, T, D)).astype(np.float32)
    out, final, _ = layer.forward(x, lengths=LENGTHS)
    path = export(layer, tmp_path / "own.onnx", lengths=True, state=False)["layer"]
    assert [i.name for i in session(path).get_inputs()] == ["x", "lengths"]
    res = run(path, x=x, lengths=LENGTHS)
    close(res["y"], out, "y")
    check_state(res, final, initial)


def test_layer_graph_uses_the_standard_operator_and_attributes(tmp_path):
    gru = make_layer(rnnkit.GRU, {"reset_after": False}, D, H, dtype=np.float32,
                     bidirectional=True)
    model = onnx.load(str(export(gru, tmp_path / "g.onnx")["layer"]))
    (op,) = [n for n in model.graph.node if n.op_type == "GRU"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in op.attribute}
    assert attrs["linear_before_reset"] == 0 and attrs["direction"] == b"bidirectional"
    relu = make_layer(rnnkit.RNN, {"nonlinearity": "relu"}, D, H, dtype=np.float32)
    model = onnx.load(str(export(relu, tmp_path / "r.onnx")["layer"]))
    (op,) = [n for n in model.graph.node if n.op_type == "RNN"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in op.attribute}
    assert attrs["activations"] == [b"Relu"]


@pytest.mark.parametrize("opset", [15, 18, 21])
def test_other_opsets(tmp_path, opset):
    layer = make_layer(rnnkit.LSTM, {}, D, H, dtype=np.float32, num_layers=2,
                       bidirectional=True, merge="ave").eval()
    x = np.random.default_rng(3).normal(size=(B, T, D)).astype(np.float32)
    out, final, _ = layer.forward(x, lengths=LENGTHS)
    path = export(layer, tmp_path / "o.onnx", lengths=True, state=False, opset=opset)["layer"]
    assert onnx.load(str(path)).opset_import[0].version == opset
    close(run(path, x=x, lengths=LENGTHS)["y"], out, f"opset {opset}")


def test_float64_export_is_valid_onnx(tmp_path):
    layer = make_layer(rnnkit.GRU, {}, D, H, dtype=np.float64)
    model = onnx.load(str(export(layer, tmp_path / "d.onnx", dtype=np.float64)["layer"]))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    # the default rounds a float64 layer to float32, what ONNX Runtime runs
    path = export(layer, tmp_path / "f.onnx")["layer"]
    x = np.random.default_rng(4).normal(size=(B, T, D))
    out, final, _ = layer.forward(x, random_state(layer, B, np.random.default_rng(5)))
    res = run(path, x=x.astype(np.float32),
              h0=random_state(layer, B, np.random.default_rng(5)).astype(np.float32))
    close(res["y"], out, "float64 layer in float32")


# --------------------------------------------------------------------------- language model
LM_FORMS = {
    "lstm-onehot-2": dict(cell="lstm", num_layers=2),
    "gru-embed": dict(cell="gru", embedding_dim=6),
    "gru-before-onehot": dict(cell="gru", reset_after=False),
    "rnn-embed-2": dict(cell="rnn", embedding_dim=4, num_layers=2),
}
V = 11


@pytest.mark.parametrize("form", list(LM_FORMS))
def test_language_model_step_graph_carries_the_state_over_50_steps(tmp_path, form):
    model = randomized(LanguageModel(V, hidden_size=H, rng=0, **LM_FORMS[form]))
    paths = export(model, tmp_path / "lm.onnx")
    assert list(paths) == ["step", "sequence"] and paths["step"].name == "lm.onnx"
    s = session(paths["step"])
    ids = np.random.default_rng(6).integers(0, V, size=(50, 3))
    state, _ = model.initial_state(3)
    onnx_state = state_feeds(state)
    for t in range(50):
        logits, state = model.step(ids[t], state)
        out = dict(zip([o.name for o in s.get_outputs()],
                       s.run(None, {"ids": ids[t], **onnx_state}), strict=True))
        close(out["log_probs"], log_softmax(logits), f"step {t}")
        check_state(out, state, f"step {t}")
        onnx_state = {k.replace("_n", "0"): v for k, v in out.items() if k != "log_probs"}


@pytest.mark.parametrize("form", list(LM_FORMS))
def test_language_model_sequence_graph(tmp_path, form):
    model = randomized(LanguageModel(V, hidden_size=H, rng=1, **LM_FORMS[form]))
    rng = np.random.default_rng(7)
    ids = rng.integers(0, V, size=(B, T))
    state = random_state(model.rnn, B, rng)
    logits, final, _ = model.forward(ids, state)
    path = export(model, tmp_path / "lm.onnx")["sequence"]
    res = run(path, ids=ids, **state_feeds(state))
    close(res["log_probs"], log_softmax(logits), "log_probs")
    check_state(res, final, "sequence")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    logits, final, _ = model.forward(ids, state, mask=mask)
    path = export(model, tmp_path / "lens.onnx", lengths=True)["sequence"]
    res = run(path, ids=ids, lengths=LENGTHS, **state_feeds(state))
    close(res["log_probs"], log_softmax(logits), "log_probs with lengths")
    check_state(res, final, "sequence with lengths")


def test_conditioned_language_model_has_an_initial_state_graph(tmp_path):
    model = randomized(LanguageModel(V, cell="lstm", hidden_size=H, num_layers=2,
                                     cond_size=3, rng=2))
    paths = export(model, tmp_path / "c.onnx")
    assert paths["initial_state"].name == "c.initial_state.onnx"
    cond = np.random.default_rng(8).normal(size=(2, 3)).astype(np.float32)
    state, _ = model.initial_state(2, cond)
    res = run(paths["initial_state"], cond=cond)
    close(res["h0"], state[0], "h0")
    close(res["c0"], state[1], "c0")
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    logits, _, _ = model.forward(ids, cond=cond)
    res = run(paths["sequence"], ids=ids, h0=res["h0"], c0=res["c0"])
    close(res["log_probs"], log_softmax(logits), "conditioned sequence")


def test_metadata_names_the_graphs_and_keeps_the_callers(tmp_path):
    model = LanguageModel(V, hidden_size=H, rng=0)
    paths = export(model, tmp_path / "m.onnx", metadata={"vocab": {"tokens": list("abc")}})
    for name, path in paths.items():
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert props["rnnkit.graph"] == name and props["rnnkit.model"] == "LanguageModel"
        assert json.loads(props["rnnkit.graphs"]) == {"step": "m.onnx",
                                                      "sequence": "m.sequence.onnx"}
        assert json.loads(props["rnnkit.vocab"]) == {"tokens": ["a", "b", "c"]}
        assert json.loads(props["rnnkit.config"])["hidden_size"] == H


# --------------------------------------------------------------------------- classifier, tagger
def padded_ids(rng, vocab, pad=0):
    """(B, T) ids in [1, vocab) with padding (pad) after each sequence's length."""
    ids = rng.integers(1, vocab, size=(B, T))
    ids[np.arange(T)[None, :] >= LENGTHS[:, None]] = pad
    return ids


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_on_padded_ids(tmp_path, cell, pooling):
    model = randomized(SequenceClassifier(3, vocab_size=V, embedding_dim=4, cell=cell,
                                          hidden_size=H, num_layers=2, bidirectional=True,
                                          pooling=pooling, rng=3))
    ids = padded_ids(np.random.default_rng(9), V)
    logits, _ = model.forward(ids)
    path = export(model, tmp_path / "cls.onnx")["classifier"]
    close(run(path, ids=ids)["logits"], logits, f"{cell} {pooling}")


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_classifier_and_regressor_on_features_with_lengths(tmp_path, pooling):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    for model in (SequenceClassifier(3, input_size=D, cell="rnn", hidden_size=H,
                                     bidirectional=True, pooling=pooling, rng=4),
                  SequenceRegressor(2, input_size=D, cell="gru", hidden_size=H,
                                    pooling=pooling, rng=5)):
        model = randomized(model)
        name = list(export(model, tmp_path / "f.onnx", lengths=True))[0]
        out, _ = model.forward(x, mask)
        res = run(tmp_path / "f.onnx", x=x, lengths=LENGTHS)
        close(res["y" if name == "regressor" else "logits"], out, f"{name} {pooling}")
        out, _ = model.forward(x)
        export(model, tmp_path / "g.onnx")
        close(list(run(tmp_path / "g.onnx", x=x).values())[0], out, f"{name} full")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_tagger(tmp_path, cell):
    rng = np.random.default_rng(11)
    model = randomized(SequenceTagger(4, vocab_size=V, embedding_dim=4, cell=cell,
                                      hidden_size=H, num_layers=2, rng=6))
    ids = padded_ids(rng, V)
    logits, _, _ = model.forward(ids)
    close(run(export(model, tmp_path / "t.onnx")["tagger"], ids=ids)["logits"], logits, cell)
    model = randomized(SequenceTagger(4, input_size=D, cell=cell, hidden_size=H, rng=7))
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    logits, _, _ = model.forward(x, np.arange(T)[None, :] < LENGTHS[:, None])
    path = export(model, tmp_path / "f.onnx", lengths=True)["tagger"]
    close(run(path, x=x, lengths=LENGTHS)["logits"], logits, cell + " features")


# --------------------------------------------------------------------------- seq2seq
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_encoder_and_decoder_step_decode_as_rnnkit(tmp_path, cell):
    model = randomized(Seq2Seq(9, 8, bos_id=1, eos_id=2, embedding_dim=4, cell=cell,
                               hidden_size=H, num_layers=2, rng=8), scale=0.5)
    src = padded_ids(np.random.default_rng(12), 9)
    paths = export(model, tmp_path / "s2s.onnx")
    assert list(paths) == ["encoder", "decoder"]
    state, _ = model.encode(src)
    enc = run(paths["encoder"], src=src)
    check_state(enc, state, "encoder")
    # greedy decoding in ONNX Runtime alone gives rnnkit's translations
    dec = session(paths["decoder"])
    names = [o.name for o in dec.get_outputs()]
    feeds = {k.replace("_n", "0"): v for k, v in enc.items()}
    ids, done, outs = np.full(B, 1), np.zeros(B, bool), [[] for _ in range(B)]
    for t in range(12):
        res = dict(zip(names, dec.run(None, {"ids": ids, **feeds}), strict=True))
        if t == 0:
            logits, _ = model._step(np.full(B, 1), state)
            close(res["log_probs"], log_softmax(logits), "first decoder step")
        ids = res["log_probs"].argmax(axis=1)
        for b in np.flatnonzero(~done):
            done[b] = ids[b] == 2
            if not done[b]:
                outs[b].append(int(ids[b]))
        feeds = {k.replace("_n", "0"): v for k, v in res.items() if k != "log_probs"}
    assert outs == model.decode(src, max_len=12)


# --------------------------------------------------------------------------- refusals
def test_refusals_name_the_problem(tmp_path):
    layer = rnnkit.LSTM(D, H)
    with pytest.raises(TypeError, match="cannot export a rnnkit.layers.Dense"):
        export(rnnkit.layers.Dense(2, 3), tmp_path / "d.onnx")
    with pytest.raises(ValueError, match=r"path must end in \.onnx, got '.*model.bin'"):
        export(layer, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="the folder '.*nowhere' does not exist"):
        export(layer, tmp_path / "nowhere" / "m.onnx")
    with pytest.raises(ValueError, match=r"opset must be in \[15, \d+\] .*got 9"):
        export(layer, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        export(layer, tmp_path / "m.onnx", dtype=np.float16)
    with pytest.raises(TypeError, match="lengths must be True or False, got 'yes'"):
        export(layer, tmp_path / "m.onnx", lengths="yes")
    model = Seq2Seq(5, 5, bos_id=1, eos_id=2, hidden_size=H)
    model.attention = True  # a decoder that reads all encoder outputs
    with pytest.raises(ValueError, match="uses attention"):
        export(model, tmp_path / "s.onnx")
    assert not list(tmp_path.iterdir())  # nothing written by a refused export


# --------------------------------------------------------------------------- check, CLI, example
def test_check_runs_every_graph_against_rnnkit(tmp_path):
    model = randomized(Seq2Seq(9, 8, bos_id=1, eos_id=2, embedding_dim=4, cell="gru",
                               hidden_size=H, dropout=0.3, rng=9)).train()
    paths = export(model, tmp_path / "s.onnx")
    report = rnnkit.onnx.check(model, paths)
    assert [r[0] for r in report] == ["encoder", "decoder"]
    assert all(0 <= diff <= TOL for _, _, diff in report)
    assert model.modules["decoder"].training  # the mode is restored


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "onnx_generate.py"


@pytest.fixture
def checkpoint(tmp_path):
    """A character model saved as `rnnkit train` saves it (vocabulary, sampling defaults)."""
    vocab = Vocab.from_text("\nabcdefgh")
    model = randomized(LanguageModel(len(vocab), cell="lstm", hidden_size=H, num_layers=2,
                                     rng=10), scale=1.0)
    path = tmp_path / "run.npz"
    model.save(path, meta={"vocab": vocab.to_json(), "source": "test", "sample_defaults": {
        "prime": "\n", "stop": "\n", "length": 20, "capitalize": True}})
    return path


def test_cli_export_writes_checks_and_describes_the_graphs(tmp_path, checkpoint, capsys):
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "lm.onnx")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"wrote {tmp_path / 'lm.onnx'} (step): ids (B,) int64, h0 (2, B, {H}), "
                      f"c0 (2, B, {H}) -> log_probs (B, 9), h_n (2, B, {H}), c_n (2, B, {H})")
    assert out[1].startswith(f"wrote {tmp_path / 'lm.sequence.onnx'} (sequence): ids (B, T)")
    for line, graph in zip(out[2:], ["step", "sequence"], strict=True):
        assert line.startswith(f"checked {graph} in ONNX Runtime {ort.__version__} against "
                               "rnnkit (")
        assert float(line.rsplit(" ", 1)[1]) <= TOL
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "lm.onnx")).metadata_props}
    assert json.loads(props["rnnkit.vocab"])["tokens"][0] == "\n"
    assert json.loads(props["rnnkit.sample_defaults"])["stop"] == "\n"
    # the default output is beside the checkpoint; --no-check skips ONNX Runtime
    assert main(["export", str(checkpoint), "--no-check", "--lengths"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    inputs = session(tmp_path / "run.sequence.onnx").get_inputs()
    assert [i.name for i in inputs] == ["ids", "h0", "c0", "lengths"]


def test_training_only_options_are_named_not_dropped(tmp_path, capsys):
    model = LanguageModel(V, hidden_size=H, num_layers=2, dropout=0.2, rng=0,
                          recurrent_dropout=0.1, variational=True)
    assert rnnkit.onnx.training_only(model) == [
        "rnn.dropout=0.2", "rnn.recurrent_dropout=0.1", "rnn.variational",
        "dropout=0.2 (before the output layer)"]
    assert rnnkit.onnx.training_only(rnnkit.GRU(D, H)) == []
    doc = onnx.load(str(export(model, tmp_path / "m.onnx")["step"])).doc_string
    assert doc.endswith("Training-only options, not in the graph: rnn.dropout=0.2, "
                        "rnn.recurrent_dropout=0.1, rnn.variational, dropout=0.2 (before the "
                        "output layer).")
    model.save(tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "--no-check"]) == 0
    assert capsys.readouterr().out.startswith(
        "note: training-only options, not in the graphs (they compute eval mode): "
        "rnn.dropout=0.2, rnn.recurrent_dropout=0.1")


@pytest.mark.parametrize("args, message", [
    (["-o", "model.bin"], "--output must end in .onnx, got 'model.bin'"),
    (["-o", "nowhere/m.onnx"], "--output: the folder 'nowhere' does not exist"),
    (["--opset", "9"], r"--opset must be in \[15, \d+\] .*got 9"),
])
def test_cli_export_errors_name_the_flag(tmp_path, checkpoint, capsys, monkeypatch, args,
                                         message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["export", str(checkpoint), *args])
    assert e.value.code == 2
    assert re.search("rnnkit: error: " + message, capsys.readouterr().err)


def test_cli_export_of_a_file_that_is_no_checkpoint(tmp_path, capsys):
    (tmp_path / "x.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "x.npz")])
    assert "rnnkit: error: " in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_the_example_generates_what_rnnkit_sample_does(tmp_path, checkpoint, capsys):
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "lm.onnx"), "--no-check"]) == 0
    capsys.readouterr()
    for flags in (["--num", "5", "--seed", "3"], ["--greedy"], ["--top-k", "3", "--num", "3"]):
        assert main(["sample", str(checkpoint), *flags]) == 0
        want = capsys.readouterr().out
        got = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "lm.onnx"), *flags],
                             capture_output=True, text=True, check=True).stdout
        assert got == want, flags


def test_the_deploy_guides_layer_example_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    """docs/deploy.md: the Python block that exports a GRU prints the lines shown after it
    (the differences to float32 rounding: their digits depend on the engine)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "deploy.md").read_text("utf-8")
    code, shown = re.search(r"```python\n(import numpy as np\nimport onnxruntime.*?)```\n\n"
                            r"prints\n\n```\n(.*?)```", text, re.S).groups()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/deploy.md", "exec"), {})
    got, want = capsys.readouterr().out.splitlines(), shown.splitlines()
    assert got[0] == want[0]
    assert got[1].split()[:6] == want[1].split()[:6]  # the shapes of y and h_n
    assert all(float(d) <= TOL for d in got[1].split()[-2:])
