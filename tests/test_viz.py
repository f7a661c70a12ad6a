"""rnnkit.viz and ``rnnkit viz``: the report's numbers against the model's one-step path,
the page in a headless Chromium (no errors, its elements, a screenshot that is not blank,
the activation shown for a picked unit, the saturation table, the top-5 on hover), and
the command's errors.

The browser tests skip where no chromium is installed (tests/browser.py finds it)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from browser import Browser, find_chromium, png_pixels

from rnnkit import viz
from rnnkit.cli import main
from rnnkit.data import Vocab
from rnnkit.models import LanguageModel
from rnnkit.viz.page import dequantise

H, LAYERS = 6, 2
WORDS = ["to", "be", "or", "not", "the", "king", "said", "my", "lord", "and"]


def _text(n_lines: int = 24, seed: int = 0) -> str:
    """Lines of words with quotes and brackets in them, so that every feature varies."""
    r = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [r.choice(WORDS) for _ in range(r.randint(3, 7))]
        if r.random() < 0.5:
            a = r.randrange(len(words))
            words[a] = '"' + words[a]
            words[-1] += '"'
        if r.random() < 0.4:
            words.insert(r.randrange(len(words)), "(aside)")
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def _model(vocab: Vocab, cell: str = "lstm", dtype=np.float64, **kw) -> LanguageModel:
    """A model with weights large enough that gates saturate."""
    model = LanguageModel(len(vocab), cell=cell, hidden_size=H, num_layers=LAYERS, rng=0,
                          dtype=dtype, **kw)
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.uniform(-1.5, 1.5, p.shape)
    return model


@pytest.fixture(scope="module")
def setup():
    text = _text()
    vocab = Vocab.from_text(text)
    model = _model(vocab)
    return model, vocab, text, viz.report(model, vocab, text)


def _stepped(model: LanguageModel, ids):
    """The reference: the model's one-step path, token by token (batch 1). Returns
    h, c (L, N, H) after each token and the softmax (N, V) of each next-token prediction."""
    state, _ = model.initial_state(1)
    hs, cs, ps = [], [], []
    for t in ids:
        logits, state = model.step(np.array([t]), state)
        h, c = state
        hs.append(h[:, 0].copy())
        cs.append(c[:, 0].copy())
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        ps.append(p / p.sum())
    return np.stack(hs, 1), np.stack(cs, 1), np.array(ps)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _saturation(model: LanguageModel, ids, hs) -> dict:
    """The fractions of LSTM gates i, f, o below 0.1 and above 0.9, recomputed from the
    weights and the stepped states: gates = sigmoid(x W_x + h_prev W_h + b), order i,f,g,o."""
    out = {}
    for layer in range(LAYERS):
        P = {k: model.params[f"rnn.l{layer}.{k}"] for k in ("W_x", "W_h", "b")}
        x = P["W_x"][ids] if layer == 0 else hs[layer - 1] @ P["W_x"]  # one-hot inputs
        h_prev = np.vstack([np.zeros((1, H)), hs[layer][:-1]])
        z = (x + h_prev @ P["W_h"] + P["b"]).reshape(len(ids), 4, H)
        out[layer] = {g: ((_sigmoid(z[:, k]) < 0.1).mean(), (_sigmoid(z[:, k]) > 0.9).mean())
                      for k, g in ((0, "i"), (1, "f"), (3, "o"))}
    return out


# --------------------------------------------------------------------------- the numbers
def test_report_states_predictions_and_saturation_match_the_model(setup):
    model, vocab, text, rep = setup
    ids = vocab.encode(text)
    hs, cs, ps = _stepped(model, ids)
    for layer in range(LAYERS):
        np.testing.assert_allclose(rep.states[(layer, "forward", "h")], hs[layer], atol=1e-10)
        np.testing.assert_allclose(rep.states[(layer, "forward", "c")], cs[layer], atol=1e-10)
    top = np.argsort(-ps, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rep.top_ids, top)
    np.testing.assert_allclose(rep.top_p, np.take_along_axis(ps, top, 1), atol=1e-10)
    np.testing.assert_allclose(rep.p_next, ps[np.arange(len(ids) - 1), ids[1:]], atol=1e-10)
    sat = _saturation(model, ids, hs)
    for layer in range(LAYERS):
        for g in ("i", "f", "o"):
            np.testing.assert_allclose(rep.saturation[(layer, "forward")][g], sat[layer][g])
    assert any(b > 0 or a > 0 for s in sat.values() for b, a in s.values())


def test_features_and_ranking(setup):
    _, _, text, rep = setup
    assert all(rep.features[f] is not None for f in viz.FEATURES)
    f = viz.text_features(list('a"b(c)d"\ne'))
    np.testing.assert_array_equal(f["in_quotes"], [0, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(f["in_brackets"], [0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["line_position"], [0, 1, 2, 3, 4, 5, 6, 7, 8, 0])
    line = rep.features["line_position"]
    key, unit, r = rep.ranked["line_position"][0]
    assert r == pytest.approx(np.corrcoef(rep.states[key][:, unit], line)[0, 1], abs=1e-9)
    assert abs(r) >= max(abs(np.corrcoef(rep.states[k][:, u], line)[0, 1])
                         for k in rep.states for u in range(H))
    rs = [abs(x[2]) for x in rep.ranked["line_position"]]
    assert rs == sorted(rs, reverse=True)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_gru_and_rnn_reports(cell):
    text = _text(6)
    vocab = Vocab.from_text(text)
    model = _model(vocab, cell)
    rep = viz.report(model, vocab, text)
    ids = vocab.encode(text)
    state, _ = model.initial_state(1)
    hs = []
    for t in ids:
        _, state = model.step(np.array([t]), state)
        hs.append(state[:, 0].copy())
    hs = np.stack(hs, 1)  # (L, N, H)
    assert set(rep.states) == {(layer, "forward", "h") for layer in range(LAYERS)}
    for layer in range(LAYERS):
        np.testing.assert_allclose(rep.states[(layer, "forward", "h")], hs[layer], atol=1e-10)
    gates = {"gru": {"r", "z"}, "rnn": set()}[cell]
    assert all(set(g) == gates for g in rep.saturation.values())
    if cell == "rnn":
        assert "A plain RNN has no gates" in viz.render_html(rep)


def test_page_data_round_trips_within_the_quantisation(setup):
    _, _, _, rep = setup
    data = json.loads(viz.render_html(rep).split('id="rnnkit-data">')[1].split("</script>")[0])
    import base64

    for s, key in zip(data["states"], rep.states, strict=True):
        q = np.frombuffer(base64.b64decode(s["q"]["b64"]), np.uint8).reshape(H, s["stride"])
        lo, hi = np.array(s["lo"]), np.array(s["hi"])
        back = dequantise(q[:, : data["n"]], lo, hi)
        np.testing.assert_allclose(back, rep.states[key], atol=float((hi - lo).max()) / 500)
    assert "http" not in viz.render_html(rep).lower().replace("http-equiv", "")


# --------------------------------------------------------------------------- the browser
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on the PATH: "
                                    "install it (apt-get install chromium) to run the page")
READY = "window.rnnkitReport && window.rnnkitReport.ready"


@pytest.fixture(scope="module")
def page(setup, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on the PATH")
    _, _, _, rep = setup
    path = tmp_path_factory.mktemp("viz") / "report.html"
    viz.write_html(rep, path)
    with Browser(CHROMIUM, width=1000, height=700) as b:
        b.open(path.as_uri(), ready=READY)
        yield b


@needs_chromium
def test_page_loads_without_errors_and_shows_its_parts(page, setup):
    _, _, text, rep = setup
    assert page.errors == []
    assert page.eval("document.querySelectorAll('#text span[data-t]').length") == len(text)
    for sel in ("#pick-layer", "#pick-kind", "#pick-unit", "#ranked .feature ol li",
                "#saturation-table tr[data-gate]", "#unit-table tr"):
        assert page.eval(f"document.querySelectorAll({json.dumps(sel)}).length") > 0, sel
    feats = page.eval("[...document.querySelectorAll('#ranked .feature')].map(e => "
                      "[e.dataset.feature, e.querySelectorAll('li').length])")
    assert feats == [[f, 5] for f in viz.FEATURES]
    img = png_pixels(page.screenshot())
    assert img.shape[:2] == (700, 1000)
    assert img[..., :3].std() > 10  # text, colours and tables, not one flat colour


@needs_chromium
def test_picked_unit_shows_the_forward_pass_value(page, setup):
    model, vocab, text, rep = setup
    hs, cs, _ = _stepped(model, vocab.encode(text))
    layer, unit, t = 0, 3, 17
    page.eval("(() => { const set = (id, v) => { const e = document.getElementById(id); "
              "e.value = v; e.dispatchEvent(new Event('change')); };"
              f"set('pick-layer', '{layer}'); set('pick-kind', 'c'); set('pick-unit', '{unit}');"
              "})()")
    assert page.eval("document.getElementById('current').textContent") == (
        f"layer {layer} c \u00b7 unit {unit}")
    state, u = page.eval("rnnkitReport.selected().state"), page.eval("rnnkitReport.selected().unit")
    assert page.eval(f"rnnkitReport.states[{state}]") == f"layer {layer} c" and u == unit
    x = cs[layer][:, unit]
    step = (x.max() - x.min()) / 255
    for s in (0, t, len(text) - 1):
        shown = page.eval(f"rnnkitReport.value({state}, {unit}, {s})")
        assert abs(shown - x[s]) <= step / 2 + 1e-5
    page.hover(*page.center(f'#text span[data-t="{t}"]'))
    tip = page.eval("document.getElementById('tip-value').textContent")
    assert tip.startswith(f"layer {layer} c unit {unit}: ")
    assert abs(float(tip.split(": ")[1]) - x[t]) <= step / 2 + 5e-4
    colour = page.eval(f"document.querySelector('#text span[data-t=\"{t}\"]').style."
                       "backgroundColor")
    assert colour.startswith("rgb(")
    assert page.errors == []


@needs_chromium
def test_saturation_table_equals_the_gates(page, setup):
    model, vocab, text, rep = setup
    ids = vocab.encode(text)
    sat = _saturation(model, ids, _stepped(model, ids)[0])
    rows = page.eval("[...document.querySelectorAll('#saturation-table tr[data-gate]')].map("
                     "r => [+r.dataset.layer, r.dataset.gate, r.querySelector('.below')"
                     ".textContent, r.querySelector('.above').textContent])")
    assert len(rows) == LAYERS * 3
    for layer, gate, below, above in rows:
        b, a = sat[layer][gate]
        assert float(below.rstrip("%")) == pytest.approx(100 * b, abs=0.006)
        assert float(above.rstrip("%")) == pytest.approx(100 * a, abs=0.006)


@needs_chromium
def test_hover_shows_the_top5_of_the_softmax(page, setup):
    model, vocab, text, rep = setup
    _, _, ps = _stepped(model, vocab.encode(text))
    shown = {"\n": "\u21b5", " ": "\u2423"}
    for t in (0, 9, len(text) // 2):
        page.hover(*page.center(f'#text span[data-t="{t}"]'))
        assert page.eval("!document.getElementById('tooltip').hidden")
        rows = page.eval("[...document.querySelectorAll('#tip-top tr.pred')].map(r => "
                         "[r.querySelector('.tok').textContent, r.querySelector('.prob')"
                         ".textContent])")
        top = np.argsort(-ps[t], kind="stable")[:5]
        assert [tok for tok, _ in rows] == [shown.get(vocab.tokens[i], vocab.tokens[i])
                                            for i in top]
        for (_, p), i in zip(rows, top, strict=True):
            assert float(p.rstrip("%")) == pytest.approx(100 * ps[t][i], abs=0.006)
    page.hover(1, 1)
    assert page.errors == []


# --------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def run(setup, tmp_path_factory):
    model, vocab, text, _ = setup
    d = tmp_path_factory.mktemp("viz_run")
    (d / "text.txt").write_text(text, encoding="utf-8")
    model.save(d / "model.npz", meta={"vocab": vocab.to_json(), "source": "text.txt"})
    return d


def test_viz_command_writes_the_page_and_the_picture(run, capsys):
    out = run / "page.html"
    args = ["viz", str(run / "model.npz"), str(run / "text.txt"), "-o", str(out),
            "--layer", "1", "--state", "c", "--unit", "2", "--length", "300"]
    try:
        import matplotlib  # noqa: F401
        args += ["--png", str(run / "unit.png")]
    except ImportError:
        pass
    assert main(args) == 0
    said = capsys.readouterr().out
    assert re.match(rf"{re.escape(str(out))}: 300 chars, [\d.]+ MB, in [\d.]+ s\n", said)
    assert "position in the line: layer" in said
    page = out.read_text(encoding="utf-8")
    data = json.loads(page.split('id="rnnkit-data">')[1].split("</script>")[0])
    assert data["n"] == 300 and data["selected"] == {"state": 3, "unit": 2}
    assert "<script src" not in page and "<link" not in page
    if "--png" in args:
        assert (run / "unit.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flags, words", [
    (["--unit", "9"], "--unit must be in [0, 5]"),
    (["--layer", "2"], "--layer must be in [0, 1]"),
    (["--direction", "reverse", "--unit", "0"], "--direction reverse needs a bidirectional"),
    (["--length", "0"], "--length must be >= 1, got 0"),
    (["--start", "100000"], "--start 100000 is past the end"),
    (["--png", "/nonexistent/u.png"], "--png '/nonexistent/u.png': the folder"),
])
def test_viz_command_errors(run, capsys, flags, words):
    with pytest.raises(SystemExit) as e:
        main(["viz", str(run / "model.npz"), str(run / "text.txt"), "-o",
              str(run / "x.html"), *flags])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnkit: error: ") and words in err
    assert not (run / "x.html").exists()


def test_viz_command_text_outside_the_vocabulary(run, capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("zebra quagga\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["viz", str(run / "model.npz"), str(bad), "-o", str(tmp_path / "x.html")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside the vocabulary" in err and str(bad) in err


def test_report_refuses_bad_arguments(setup):
    model, vocab, _, _ = setup
    with pytest.raises(ValueError, match="empty text"):
        viz.report(model, vocab, "")
    with pytest.raises(TypeError, match="LanguageModel"):
        viz.report(object(), vocab, "to")
    with pytest.raises(ValueError, match="top must"):
        viz.report(model, vocab, "to", top=0)
    assert Path(viz.__file__).with_name("template.html").is_file()


def test_viz_command_without_matplotlib_writes_the_page_and_says_so(run, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    out, png = run / "plain.html", run / "plain.png"
    assert main(["viz", str(run / "model.npz"), str(run / "text.txt"), "-o", str(out),
                 "--png", str(png)]) == 0
    err = capsys.readouterr().err
    assert err == "--png not drawn: matplotlib is not installed (pip install 'rnnkit[plot]')\n"
    assert out.is_file() and not png.exists()
