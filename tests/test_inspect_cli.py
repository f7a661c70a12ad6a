"""``rnnkit inspect``: the table of the gradient flow equals rnnkit.inspect.gradient_flow's
numbers, its default text, its plot, its errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.cli import BUILTIN, main
from rnnkit.cli.inspect_commands import _batch
from rnnkit.data import Vocab, dinos_text
from rnnkit.inspect import flow_table, gradient_flow
from rnnkit.models import LanguageModel

T, B = 12, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    text = dinos_text().lower()[:3000]
    (d / "text.txt").write_text(text, encoding="utf-8")
    vocab = Vocab.from_text(dinos_text().lower())
    model = LanguageModel(len(vocab), cell="lstm", hidden_size=8, num_layers=2, rng=0)
    meta = {"vocab": vocab.to_json()}
    model.save(d / "builtin.npz", meta={**meta, "source": BUILTIN})
    model.save(d / "file.npz", meta={**meta, "source": str(d / "text.txt")})
    model.save(d / "gone.npz", meta={**meta, "source": str(d / "gone.txt")})
    return d, model, vocab, text


def _table(out: str) -> tuple[list[str], np.ndarray]:
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:1] == ["distance"])
    rows = []
    for line in lines[i + 1:]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        rows.append([float(x) for x in line.split()])
    return lines[i - 1: i + 1], np.array(rows)


def test_table_equals_gradient_flow(run, capsys):
    d, model, vocab, text = run
    args = ["inspect", str(d / "file.npz"), str(d / "text.txt"), "--seq-len", str(T),
            "--batch-size", str(B), "--every", "5", "--no-plot"]
    assert main(args) == 0
    head, rows = _table(capsys.readouterr().out)
    assert "distance" in head[1]
    assert head[0].split() == ["layer", "0", "forward", "layer", "1", "forward"]
    assert head[1].split() == ["distance", "last", "sum", "last", "sum"]
    batch = _batch(vocab.encode(text), B, T, "text")
    assert batch["x"].shape == (B, T)
    np.testing.assert_array_equal(batch["y"][:, :-1], batch["x"][:, 1:])
    np.testing.assert_array_equal(rows[:, 0], [0, 5, 10, T - 1])
    for c, (key, loss) in enumerate([(k, loss) for k in [(0, "forward"), (1, "forward")]
                                     for loss in ("last", "sum")]):
        want = gradient_flow(model, batch, loss).by_distance(key)[1]
        np.testing.assert_allclose(rows[:, 1 + c], want[rows[:, 0].astype(int)], rtol=1e-3)


def test_flow_table_every_row():
    vocab = Vocab.from_text("abcab")
    model = LanguageModel(len(vocab), cell="gru", hidden_size=4, rng=0)
    batch = _batch(np.array([0, 1, 2, 0, 1, 2, 1]), 2, 5, "x")
    flows = {loss: gradient_flow(model, batch, loss) for loss in ("last", "sum")}
    lines = flow_table(flows).splitlines()
    assert len(lines) == 2 + 5 and lines[1].split()[0] == "distance"


def test_default_text_and_plot(run, capsys):
    d, _, _, _ = run
    for name in ("builtin", "file"):
        args = ["inspect", str(d / f"{name}.npz"), "--seq-len", "10", "--batch-size", "2"]
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            args.append("--no-plot")
        assert main(args) == 0
        out = capsys.readouterr().out
        assert ("the built-in dinosaur names" if name == "builtin" else "text.txt") in out
        if "--no-plot" not in args:
            png = d / f"{name}_gradient_flow.png"
            assert f"plot: {png}" in out and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, words", [
    (["gone.npz"], "no TEXT_FILE given"),
    (["file.npz", "--seq-len", "0"], "--seq-len must be >= 1, got 0"),
    (["file.npz", "--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    (["file.npz", "--seq-len", "5000"], "--seq-len 5000 needs at least 5001"),
    (["missing.npz"], "does not exist"),
    (["file.npz", "-o", "/nonexistent/f.png"], "--output '/nonexistent/f.png': the folder"),
])
def test_errors_are_one_line(run, capsys, args, words):
    d, _, _, _ = run
    argv = ["inspect", str(d / args[0]), *args[1:], "--no-plot"]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnkit: error: ") and words in err



def test_a_model_with_a_conditioning_vector_is_refused(tmp_path, capsys):
    vocab = Vocab.from_text("abcab")
    model = LanguageModel(len(vocab), cell="gru", hidden_size=4, cond_size=2, rng=0)
    model.save(tmp_path / "cond.npz", meta={"vocab": vocab.to_json(), "source": BUILTIN})
    (tmp_path / "t.txt").write_text("abcabcabc\n" * 5, encoding="utf-8")
    for cmd in (["inspect"], ["viz", "-o", str(tmp_path / "x.html")]):
        with pytest.raises(SystemExit) as e:
            main([cmd[0], str(tmp_path / "cond.npz"), str(tmp_path / "t.txt"), *cmd[1:]])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "conditioning vector" in err


def test_without_matplotlib_the_table_is_printed_and_the_plot_skipped(run, capsys, monkeypatch):
    import sys

    d, _, _, _ = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    png = d / "none.png"
    assert main(["inspect", str(d / "builtin.npz"), "--seq-len", "8", "-o", str(png)]) == 0
    said = capsys.readouterr()
    assert "distance" in said.out and "plot not drawn: matplotlib is not installed" in said.err
    assert not png.exists()
