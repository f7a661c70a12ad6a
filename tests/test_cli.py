"""End-to-end tests of the ``rnnkit`` command: each test runs the real command in a
subprocess on a small generated corpus with a tiny model, in a temporary folder, and checks
what it prints and writes.

Most runs hide matplotlib (a ``matplotlib.py`` shim on PYTHONPATH that raises ImportError):
drawing loss.png costs about a second per run and is checked once, in
``test_train_writes_checkpoints_history_samples_and_plot``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import checkpoint
from rnnkit.cli import build_parser
from rnnkit.data import Vocab
from rnnkit.models import load_model
from rnnkit.resume import newest_checkpoint


def _command() -> list[str]:
    # the console script of the environment under test, else the module
    exe = shutil.which("rnnkit", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "rnnkit.cli"]


RNNKIT = _command()
TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "10", "--batch-size", "4"]
PERIOD = "le café est très bon — déjà vu\n"  # one line of the periodic corpus
WORDS = ["café", "naïve", "élan", "—", "déjà", "vu", "the", "river", "runs", "over", "stones",
         "and", "so", "on", "«", "»", "l'été"]
ERROR = "rnnkit: error: "


# --------------------------------------------------------------------------- running rnnkit
def _env(shim: Path | None) -> dict:
    """The runs' environment: UTF-8 output, and the rnnkit these tests imported first on the
    path (the same source tree, installed or not), after the matplotlib shim if any."""
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONWARNINGS", None)
    path = [str(shim)] if shim is not None else []
    path.append(str(Path(rnnkit.__file__).resolve().parent.parent))
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _default_sigint():
    # a shell starts background jobs with SIGINT ignored, and exec keeps it ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> dict:
    """Environment of the runs: UTF-8 output, matplotlib hidden."""
    shim = tmp_path_factory.mktemp("no_matplotlib")
    (shim / "matplotlib.py").write_text(
        'raise ImportError("matplotlib is hidden by the rnnkit tests")\n')
    return _env(shim)


@pytest.fixture(scope="session")
def env_plot() -> dict:
    """Environment of the runs with matplotlib visible (when it is installed)."""
    return _env(None)


def run(args, env, cwd, timeout=120) -> subprocess.CompletedProcess:
    """Run ``rnnkit *args`` and return the finished process (text output)."""
    return subprocess.run([*RNNKIT, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def run_many(arglists, env, cwd, timeout=120) -> list[subprocess.CompletedProcess]:
    """Run several short ``rnnkit`` commands side by side (they must not share outputs)."""
    procs = [subprocess.Popen([*RNNKIT, *map(str, a)], cwd=cwd, env=env, text=True,
                              encoding="utf-8", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for a in arglists]
    done = []
    for a, p in zip(arglists, procs, strict=True):
        out, err = p.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess([*RNNKIT, *map(str, a)], p.returncode, out, err))
    return done


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, f"{res.args} failed ({res.returncode}):\n{res.stderr}"
    assert "Traceback" not in res.stderr
    return res


def clean_error(res: subprocess.CompletedProcess, *words: str, code: int = 2) -> str:
    """Assert a one-line ``rnnkit: error: ...`` on stderr holding ``words``; return it."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, f"{res.args}: exit code {res.returncode}\n{res.stderr}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    msg = lines[0]
    assert msg.startswith(ERROR), msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert res.stdout == ""
    return msg


def snapshot(folder: Path) -> dict:
    """Every file of a folder: name -> (bytes, mtime in ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "history.json").read_text())


def step_of(path: Path) -> int:
    return checkpoint.load(path)[1]["train_state"]["step"]


def wait_for(cond, proc, timeout=60.0, what="a condition"):
    """Poll ``cond()`` until true; fail if ``proc`` ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}:\n"
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def file_id(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


# --------------------------------------------------------------------------- corpora and runs
@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """~5 kB of UTF-8 lines of random words, with accents, dashes and guillemets."""
    r = random.Random(0)
    lines = [" ".join(r.choice(WORDS) for _ in range(r.randint(3, 8))) for _ in range(180)]
    path = tmp_path_factory.mktemp("corpus") / "words.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def lm(tmp_path_factory, env):
    """A run trained to near certainty on a periodic text (so greedy decoding has clear
    margins): returns (text path, run folder)."""
    d = tmp_path_factory.mktemp("periodic")
    text = d / "periodic.txt"
    text.write_text(PERIOD * 150, encoding="utf-8")
    out = d / "run"
    ok(run(["train", text, *TINY, "--steps", 150, "--eval-every", 50, "--lr", 0.02, "--quiet",
            "--out", out], env, d))
    return text, out


def library_sample(ckpt: Path, prime: str, length: int, **kw) -> str:
    """What the library generates for these settings (the reference for ``sample``)."""
    model, meta, _ = load_model(ckpt)
    vocab = Vocab.from_json(meta["vocab"])
    return vocab.decode(model.generate(vocab.encode(prime), length, **kw))


# --------------------------------------------------------------------------- train
def test_train_writes_checkpoints_history_samples_and_plot(tmp_path, corpus, env_plot):
    out = tmp_path / "run"
    res = ok(run(["train", corpus, *TINY, "--steps", 12, "--eval-every", 4,
                  "--checkpoint-every", 6, "--sample-every", 6, "--out", out], env_plot, tmp_path))
    text = corpus.read_text(encoding="utf-8")
    names = sorted(p.name for p in out.iterdir())

    # history.json: one record per step, validation at every 4th
    hist = history(out)
    assert [h["step"] for h in hist] == list(range(1, 13))
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in hist)
    val = {h["step"]: h["val_loss"] for h in hist if "val_loss" in h}
    assert sorted(val) == [4, 8, 12]
    assert all(math.isclose(h["val_bpc"], h["val_loss"] / math.log(2), rel_tol=1e-9)
               for h in hist if "val_loss" in h)
    # history.csv: the same numbers
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in hist]
    assert {int(r["step"]): float(r["val_loss"]) for r in rows if r["val_loss"]} == val

    # checkpoints: step-named at --checkpoint-every, step-and-val-named at validations
    # (the 3 most recent kept), best.npz and last.npz
    ckpts = [n for n in names if n.startswith("ckpt_")]
    assert ckpts == ["ckpt_step0000006.npz", f"ckpt_step0000008_val{val[8]:.4f}.npz",
                     f"ckpt_step0000012_val{val[12]:.4f}.npz"]
    for n in ckpts + ["best.npz", "last.npz"]:
        arrays, meta = checkpoint.load(out / n)
        assert meta["vocab"]["tokens"] == sorted(set(text))
        assert any(k.startswith("param/") for k in arrays)
    assert step_of(out / "last.npz") == 12
    assert [step_of(out / n) for n in ckpts] == [6, 8, 12]
    best_step = min(val, key=val.get)
    best, best_meta = checkpoint.load(out / "best.npz")
    assert best_meta["train_state"]["step"] == best_step
    last, _ = checkpoint.load(out / "last.npz")
    final, _ = checkpoint.load(out / ckpts[-1])
    assert all(np.array_equal(last[k], final[k]) for k in last if k.startswith("param/"))

    # samples at --sample-every on stderr, the final sample on stdout, all in the vocabulary
    assert re.findall(r"--- samples at step (\d+) ---", res.stderr) == ["6", "12"]
    assert res.stdout.strip() and set(res.stdout) <= set(text) | {"\n"}
    assert "output in" in res.stderr and "vocabulary" in res.stderr

    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in res.stderr


def test_train_without_matplotlib_notes_it_instead_of_crashing(tmp_path, corpus, env):
    out = tmp_path / "run"
    res = ok(run(["train", corpus, *TINY, "--steps", 3, "--sample-every", 0, "--out", out],
                 env, tmp_path))
    assert "note: matplotlib is not installed, so no loss plot was drawn" in res.stderr
    assert not (out / "loss.png").exists()
    assert [h["step"] for h in history(out)] == [1, 2, 3]
    assert (out / "history.csv").exists() and (out / "best.npz").exists()


def test_train_builtin_dinosaur_names(tmp_path, env):
    # no TEXT_FILE and no --out: the built-in names, into runs/dinos
    res = ok(run(["train", *TINY, "--steps", 3, "--sample-every", 3], env, tmp_path))
    out = tmp_path / "runs" / "dinos"
    _, meta = checkpoint.load(out / "last.npz")
    assert meta["source"] == "builtin:dinos"
    assert meta["vocab"]["tokens"] == ["\n"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert "builtin:dinos" in res.stderr
    # three names at step 3, then ten final names on stdout, capitalised, new ones marked
    sampled = res.stderr.split("--- samples at step 3 ---\n")[1].splitlines()[:3]
    assert all(re.fullmatch(r"([A-Z][a-z]*)?", n) for n in sampled), sampled
    names = res.stdout.splitlines()
    assert len(names) == 10
    assert all(re.fullmatch(r"([A-Z][a-z]*)?( {3}\(new\))?", n) for n in names), names
    new = sum(n.endswith("(new)") for n in names)
    empty = names.count("")  # shown as empty, and not counted among the names
    assert f"{new} of {10 - empty} names are not in the training list" in res.stderr


# --------------------------------------------------------------------------- resume
def test_resume_is_exact(tmp_path, corpus, env):
    args = ["train", corpus, *TINY, "--dropout", 0.1, "--eval-every", 4, "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    ok(run([*args, "--steps", 12, "--out", one], env, tmp_path))
    ok(run([*args, "--steps", 6, "--out", two], env, tmp_path))
    assert step_of(two / "last.npz") == 6
    ok(run([*args, "--steps", 12, "--out", two, "--resume"], env, tmp_path))

    a, meta_a = checkpoint.load(one / "last.npz")
    b, meta_b = checkpoint.load(two / "last.npz")
    params = [k for k in a if k.startswith("param/")]
    assert params and sorted(a) == sorted(b)
    for k in params:
        assert np.array_equal(a[k], b[k]), k
    for k in a:  # optimizer moments and the carried state too
        assert np.array_equal(a[k], b[k]), k
    assert meta_a["rng"] == meta_b["rng"]
    assert [h["loss"] for h in history(one)] == [h["loss"] for h in history(two)]
    assert [h.get("val_loss") for h in history(one)] == [h.get("val_loss") for h in history(two)]

    s1, s2 = run_many([["sample", d / "last.npz", "--seed", 7, "--length", 80]
                       for d in (one, two)], env, tmp_path)
    assert ok(s1).stdout == ok(s2).stdout and len(s1.stdout) >= 2


# `rnnkit train` whose N-th write of last.npz stops halfway through its archive: half of
# the bytes are in the temporary file, nothing is renamed yet; the run then announces it
# (creates the file argv[1]) and waits there to be killed
TORN_WRITE = textwrap.dedent("""
    import io, os, sys, time
    import numpy as np
    from rnnkit import checkpoint
    from rnnkit.cli import main

    announce, pause_at = sys.argv[1], int(sys.argv[2])
    save, savez = checkpoint.save, np.savez
    writes_of_last = 0

    def torn_savez(f, **arrays):
        archive = io.BytesIO()
        savez(archive, **arrays)
        f.write(archive.getvalue()[: archive.tell() // 2])
        f.flush()
        open(announce, "x").close()
        time.sleep(600)

    def watched_save(path, arrays, meta):
        global writes_of_last
        if os.path.basename(path) == "last.npz":
            writes_of_last += 1
            if writes_of_last == pause_at:
                np.savez = torn_savez
        return save(path, arrays, meta)

    checkpoint.save = watched_save
    sys.exit(main(sys.argv[3:]))
""")


def test_sigkill_while_checkpointing_leaves_previous_checkpoints_intact(tmp_path, corpus, env):
    """Four runs writing a checkpoint after every step are SIGKILLed: two at a random moment,
    two (odd rounds) surely in the middle of writing last.npz, halfway through its archive
    (TORN_WRITE: the run's second write of last.npz stops there until it is killed). Every
    checkpoint left behind must load, last.npz must be the one before the torn write, and
    the run must continue from it."""
    out = tmp_path / "run"
    last = out / "last.npz"
    # checkpoints (weights and Adam's moments, ~5 MB, fsync'ed) that take a noticeable time
    # to write, one after every step: the random kills often land mid-write too
    args = ["train", str(corpus), "--hidden", "192", "--layers", "2", "--seq-len", "10",
            "--batch-size", "4", "--checkpoint-every", "1", "--eval-every", "3", "--quiet",
            "--steps", "100000", "--out", str(out)]
    rng = random.Random(20240601)
    for i in range(4):
        before = file_id(last)
        # the run resumes from the newest complete checkpoint: last.npz, or a step-named
        # one written after it when a kill came between the two writes
        newest, _ = newest_checkpoint(out) if out.exists() else (None, [])
        steps_before = step_of(newest) if newest else 0
        tmps = {p.name for p in out.glob("*.tmp")} if out.exists() else set()
        announce = tmp_path / f"torn-write-{i}"
        torn_round = i % 2 == 1
        command = ([sys.executable, "-c", TORN_WRITE, str(announce), "2"] if torn_round
                   else list(RNNKIT))
        proc = subprocess.Popen(command + args + (["--resume"] if before else []),
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            # this run has written a last.npz of its own
            wait_for(lambda before=before: file_id(last) not in (None, before), proc,
                     what="a new last.npz")
            if torn_round:
                wait_for(announce.exists, proc, what="the torn write of last.npz")
            else:
                time.sleep(rng.uniform(0.0, 0.3))
            proc.kill()
        finally:
            proc.kill()
            proc.wait(timeout=30)
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        if torn_round:
            # the kill landed mid-write: the half-written last.npz is still a temporary file,
            # not loadable, and last.npz is the complete one written before it
            new_tmps = {p.name for p in out.glob("*.tmp")} - tmps
            assert len(new_tmps) == 1, new_tmps
            torn = out / new_tmps.pop()
            assert torn.name.startswith("last.npz.") and torn.stat().st_size > 0
            with pytest.raises(checkpoint.CheckpointError):
                checkpoint.load(torn)
            assert step_of(last) == steps_before + 1, "last.npz: the write before the torn one"
            assert newest_checkpoint(out)[0] is not None
        # every checkpoint left behind is complete and loadable
        npz = sorted(out.glob("*.npz"))
        assert last in npz
        for p in npz:
            arrays, meta = checkpoint.load(p)
            assert "train_state" in meta and any(k.startswith("param/") for k in arrays)
        load_model(last)
        # anything else is a temporary file of an unfinished write
        others = {p.name for p in out.iterdir()} - {p.name for p in npz}
        assert all(n.endswith(".tmp") for n in others), others

    # the run continues from last.npz
    k = step_of(last)
    hist_k = checkpoint.load(last)[1]["train_state"]["history"]
    assert k >= 1 and [h["step"] for h in hist_k] == list(range(1, k + 1))
    ok(run([*args[:-4], "--steps", k + 2, "--out", out, "--resume"], env, tmp_path))
    assert step_of(last) == k + 2
    hist = history(out)
    assert [h["step"] for h in hist] == list(range(1, k + 3))
    assert [h["loss"] for h in hist[:k]] == [h["loss"] for h in hist_k]


def test_ctrl_c_stops_cleanly_and_resumes_exactly(tmp_path, corpus, env):
    out = tmp_path / "run"
    args = ["train", corpus, "--hidden", 64, "--layers", 1, "--seq-len", 10, "--batch-size", 4,
            "--dropout", 0.1, "--checkpoint-every", 1, "--quiet"]
    proc = subprocess.Popen([*RNNKIT, *map(str, args), "--steps", "100000", "--out", str(out)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", preexec_fn=_default_sigint)
    try:
        wait_for(lambda: (out / "last.npz").exists(), proc, what="last.npz")
        time.sleep(random.Random(7).uniform(0.05, 0.3))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    # the step under way is finished, then the run stops with the shell's Ctrl-C status
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping after this step" in err and "interrupted at step" in err
    k = step_of(out / "last.npz")
    assert k >= 1
    assert [h["step"] for h in history(out)] == list(range(1, k + 1))
    # --resume continues from there, to the same weights as a run that was never stopped
    ok(run([*args, "--steps", k + 2, "--out", out, "--resume"], env, tmp_path))
    ok(run([*args, "--steps", k + 2, "--out", tmp_path / "straight"], env, tmp_path))
    a, _ = checkpoint.load(out / "last.npz")
    b, _ = checkpoint.load(tmp_path / "straight" / "last.npz")
    assert step_of(out / "last.npz") == k + 2
    assert sorted(a) == sorted(b) and all(np.array_equal(a[n], b[n]) for n in a)
    assert [h["step"] for h in history(out)] == list(range(1, k + 3))


# --------------------------------------------------------------------------- refusals
@pytest.fixture
def saved_run(tmp_path, lm):
    """A copy of the trained run (file times kept) that a test may try to damage."""
    text, run_dir = lm
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    return text, out


def test_train_refuses_to_overwrite_a_run(tmp_path, saved_run, env):
    text, out = saved_run
    before = snapshot(out)
    res = run(["train", text, *TINY, "--steps", 5, "--out", out], env, tmp_path)
    clean_error(res, "already holds a run", "--resume", "nothing was overwritten")
    assert snapshot(out) == before


def test_resume_without_a_saved_run(tmp_path, corpus, env):
    out = tmp_path / "never"
    res = run(["train", corpus, *TINY, "--steps", 5, "--resume", "--out", out], env, tmp_path)
    clean_error(res, "--resume", "last.npz", "does not exist")
    assert not out.exists()


def test_resume_refuses_other_settings_or_text(tmp_path, saved_run, corpus, env):
    text, out = saved_run
    before = snapshot(out)
    base = ["train", "--steps", 200, "--lr", 0.02, "--quiet", "--out", out, "--resume"]
    hidden, cell, batch, other_text = run_many([
        [*base, text, *TINY[2:], "--hidden", 32, "--layers", 1],
        [*base, text, *TINY, "--cell", "gru"],
        [*base, text, *TINY[:-1], 8],
        [*base, corpus, *TINY],
    ], env, tmp_path)
    clean_error(hidden, "--resume", "--hidden 16 (now 32)", "nothing was changed")
    clean_error(cell, "--resume", "--cell lstm (now gru)")
    clean_error(batch, "--resume", "--batch-size 4 (now 8)")
    clean_error(other_text, "--resume", "vocabulary")
    assert snapshot(out) == before


# --------------------------------------------------------------------------- bad input
def test_bad_text_files(tmp_path, env):
    binary = tmp_path / "random.bin"
    binary.write_bytes(bytes([0xFF, 0xFE]) + np.random.default_rng(0).bytes(2000))
    bad, missing = run_many([
        ["train", binary, *TINY, "--steps", 2, "--out", tmp_path / "a"],
        ["train", tmp_path / "missing.txt", *TINY, "--steps", 2, "--out", tmp_path / "b"],
    ], env, tmp_path)
    clean_error(bad, "random.bin", "not valid UTF-8")
    clean_error(missing, "missing.txt", "does not exist")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_engine_flag(tmp_path, corpus, env):
    """--engine numpy: the numpy engine's run, bit for bit; the compiled kernels' run agrees
    with it to float rounding, and repeats bit for bit."""
    pytest.importorskip("numba")
    args = ["train", corpus, "--hidden", 16, "--layers", 2, "--seq-len", 10, "--batch-size",
            16, "--steps", 3, "--eval-every", 3, "--quiet"]
    runs = {"numpy": [*args, "--engine", "numpy"], "auto": args, "again": args}
    for res in run_many([[*a, "--out", tmp_path / n] for n, a in runs.items()], env, tmp_path):
        ok(res)
    numpy_engine = ("import sys, rnnkit.accelerated as a; a.set_enabled(False); "
                    "from rnnkit.cli import main; sys.exit(main(sys.argv[1:]))")
    ok(subprocess.run([sys.executable, "-c", numpy_engine,
                       *map(str, [*args, "--out", tmp_path / "plain"])], cwd=tmp_path, env=env,
                      capture_output=True, text=True, encoding="utf-8", timeout=120))
    weights = {}
    for name in ("numpy", "auto", "again", "plain"):
        a, _ = checkpoint.load(tmp_path / name / "last.npz")
        weights[name] = {k: v for k, v in a.items() if k.startswith("param/")}

    def same(a, b):
        return all(weights[a][k].tobytes() == weights[b][k].tobytes() for k in weights[a])

    assert weights["numpy"] and same("numpy", "plain") and same("auto", "again")
    assert not same("numpy", "auto")  # the compiled kernels did run
    for k, v in weights["numpy"].items():
        np.testing.assert_allclose(weights["auto"][k], v, rtol=1e-4, atol=1e-5)


def test_bad_train_flags_name_the_flag(tmp_path, corpus, env):
    cases = [("--hidden", "0", "0"), ("--dropout", "1.5", "1.5"), ("--lr", "-1", "-1.0"),
             ("--steps", "0", "0"), ("--batch-size", "0", "0"),
             ("--val-fraction", "1", "1.0"), ("--lr", "inf", "inf"),
             ("--init", "uniform:-1", "-1.0")]
    arglists = []
    for i, (flag, value, _) in enumerate(cases):
        settings = {"--hidden": 16, "--layers": 1, "--batch-size": 4, "--steps": 2, flag: value}
        arglists.append(["train", corpus, *[a for kv in settings.items() for a in kv],
                         "--out", tmp_path / f"run{i}"])
    for (flag, _, shown), res in zip(cases, run_many(arglists, env, tmp_path), strict=True):
        msg = clean_error(res, flag)
        assert f"got {shown}" in msg
    assert not list(tmp_path.glob("run*"))


def test_broken_checkpoints_give_clear_errors(tmp_path, lm, env):
    text, run_dir = lm
    data = (run_dir / "last.npz").read_bytes()
    broken = {
        "half.npz": data[: len(data) // 2],
        "cut_end.npz": data[:-100],
        "empty.npz": b"",
        "text.npz": text.read_bytes(),  # a text file named like a checkpoint
    }
    for name, blob in broken.items():
        (tmp_path / name).write_bytes(blob)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    # every command on a truncated checkpoint and on a text file; info on the rest
    cmds = [[cmd, tmp_path / n, *([text] if cmd == "eval" else [])]
            for n in ("half.npz", "text.npz") for cmd in ("sample", "eval", "info")]
    cmds += [["info", tmp_path / n] for n in ("cut_end.npz", "empty.npz", "plain.npz",
                                              "absent.npz")]
    for cmd, res in zip(cmds, run_many(cmds, env, tmp_path), strict=True):
        clean_error(res, Path(cmd[1]).name)


def test_sample_and_eval_flag_errors(tmp_path, lm, env):
    text, run_dir = lm
    ckpt = run_dir / "last.npz"
    outside = tmp_path / "outside.txt"
    outside.write_text("le café XYZ\n", encoding="utf-8")
    short = tmp_path / "short.txt"
    short.write_text("l", encoding="utf-8")
    cases = [
        (["sample", ckpt, "--prime", "café QZ"], ["--prime", "'Q'", "'Z'", "outside"]),
        (["sample", ckpt, "--stop", "ca"], ["--stop", "single"]),
        (["sample", ckpt, "--temperature", -1], ["--temperature", "got -1.0"]),
        (["sample", ckpt, "--temperature", "1e-310"], ["--temperature", "1e-310"]),
        (["sample", ckpt, "--top-k", 2.5], ["--top-k", "invalid int value: '2.5'"]),
        (["sample", ckpt, "--top-k", 1000], ["--top-k", "in [1, 21]", "got 1000"]),
        (["sample", ckpt, "--beam", -1], ["--beam", "got -1"]),
        (["sample", ckpt, "--beam", 2, "--top-p", 0.5], ["--beam", "takes no --top-p"]),
        (["sample", ckpt, "--seed", -1], ["--seed", "got -1"]),
        (["sample", ckpt, "--prime", "\\"], ["--prime", "escape"]),
        (["sample", ckpt, "--top-k", 0], ["--top-k", "got 0"]),
        (["sample", ckpt, "--top-p", 1.5], ["--top-p", "1.5"]),
        (["sample", ckpt, "--beam", 0], ["--beam", "got 0"]),
        (["sample", ckpt, "--length", -3], ["--length", "-3"]),
        (["eval", ckpt, outside], ["outside.txt", "'X'", "'Y'", "'Z'"]),
        (["eval", ckpt, short], ["short.txt", "at least 2"]),
        (["eval", ckpt, text, "--batch-size", 0], ["--batch-size", "got 0"]),
    ]
    results = run_many([args for args, _ in cases], env, tmp_path)
    for (_, words), res in zip(cases, results, strict=True):
        clean_error(res, *words)


# --------------------------------------------------------------------------- sample
def test_sample_decoding_modes(tmp_path, lm, env):
    text, run_dir = lm
    ckpt = run_dir / "last.npz"
    L = 100
    modes = [["--greedy"], ["--top-k", 1], ["--beam", 1], ["--temperature", 0.01]]
    results = run_many([["sample", ckpt, "--length", L, *m] for m in modes], env, tmp_path)
    outs = [ok(r).stdout for r in results]
    expected = library_sample(ckpt, "\n", L, greedy=True)
    assert len(expected) == L and expected.startswith(PERIOD[:-1])
    for m, o in zip(modes, outs, strict=True):
        assert o == expected + ("" if expected.endswith("\n") else "\n"), m


def test_sample_seed_stop_num_prime_length(tmp_path, lm, env):
    text, run_dir = lm
    ckpt = run_dir / "last.npz"
    hot = ["--temperature", 3, "--length", 60]
    seed7, seed7_again, seed8, stop, stop_e, num, num_lines, prime, shown, length = run_many([
        ["sample", ckpt, *hot, "--seed", 7],
        ["sample", ckpt, *hot, "--seed", 7],
        ["sample", ckpt, *hot, "--seed", 8],
        ["sample", ckpt, "--greedy", "--length", 200, "--stop", "\\n"],
        ["sample", ckpt, "--greedy", "--length", 200, "--stop", "é"],
        ["sample", ckpt, "--greedy", "--length", 40, "--num", 3],
        ["sample", ckpt, "--temperature", 0.5, "--stop", "\\n", "--num", 3, "--length", 100],
        ["sample", ckpt, "--greedy", "--length", 12, "--prime", "café"],
        ["sample", ckpt, "--greedy", "--length", 12, "--prime", "café", "--hide-prime"],
        ["sample", ckpt, "--greedy", "--length", 17],
    ], env, tmp_path)

    # reproducible for a seed, and what the library draws with that seed
    assert ok(seed7).stdout == ok(seed7_again).stdout != ok(seed8).stdout
    ref = library_sample(ckpt, "\n", 60, rng=np.random.default_rng(7), temperature=3.0)
    assert seed7.stdout.rstrip("\n") == ref.rstrip("\n")
    # --stop: up to and including the stop token
    assert ok(stop).stdout == PERIOD
    assert ok(stop_e).stdout == "le caf" + "é\n"
    # --num 3: three samples (blank-line separated without a stop token, one line each with
    # a newline stop)
    one = library_sample(ckpt, "\n", 40, greedy=True)
    one += "" if one.endswith("\n") else "\n"
    assert ok(num).stdout == "\n".join([one] * 3)
    assert len(ok(num_lines).stdout.splitlines()) == 3
    # --prime is used and printed as the start of the sample (--hide-prime: not printed)
    cont = library_sample(ckpt, "café", 12, greedy=True)
    assert cont.startswith(" est très")
    assert ok(prime).stdout == "café" + cont + "\n"
    assert ok(shown).stdout == cont + "\n"
    # --length: that many characters, then the closing newline
    assert ok(length).stdout == "le café est très \n"
    assert len(length.stdout) - 1 == 17


def test_word_level_run_and_sample(tmp_path, corpus, env):
    out = tmp_path / "words"
    ok(run(["train", corpus, "--word", *TINY, "--steps", 4, "--quiet", "--out", out], env,
           tmp_path))
    ckpt = out / "last.npz"
    model, meta, _ = load_model(ckpt)
    vocab = Vocab.from_json(meta["vocab"])
    assert vocab.level == "word" and {"café", "—", "été", "\n", "<unk>"} <= set(vocab.tokens)
    shown, info = run_many([
        ["sample", ckpt, "--greedy", "--length", 12, "--prime", "café"],
        ["info", ckpt]], env, tmp_path)
    toks = model.generate(vocab.encode("café"), 12, greedy=True)
    # words joined by single spaces, as Vocab.decode joins them
    text = vocab.decode([vocab.index["café"], *toks])
    assert ok(shown).stdout == text + ("" if text.endswith("\n") else "\n")
    assert re.search(rf"^vocabulary\s+{len(vocab)} words", ok(info).stdout, re.M)


# --------------------------------------------------------------------------- eval and info
def test_eval_reports_consistent_numbers(tmp_path, lm, env):
    text, run_dir = lm
    ckpt = run_dir / "last.npz"
    corpus = text.read_text(encoding="utf-8")
    # the validation part of the run: the last 10 % of the text
    val_text = corpus[-int(round(len(corpus) * 0.1)):]
    val_file = tmp_path / "val.txt"
    val_file.write_text(val_text, encoding="utf-8")
    full, val = run_many([["eval", ckpt, text],
                          ["eval", ckpt, val_file, "--batch-size", 4, "--seq-len", 10]],
                         env, tmp_path)
    for res, n in ((ok(full), len(corpus)), (ok(val), len(val_text))):
        out = res.stdout
        assert f"{n:,} chars" in out
        loss = float(re.search(r"loss\s+([\d.]+) nats/char", out).group(1))
        bpc = float(re.search(r"bits/char\s+([\d.]+)", out).group(1))
        ppl = float(re.search(r"perplexity\s+([\d.]+)", out).group(1))
        assert abs(bpc - loss / math.log(2)) < 2e-4
        assert math.isclose(ppl, math.exp(loss), rel_tol=2e-4, abs_tol=1e-3)
        assert loss < 0.5 < math.log(len(set(corpus)))  # far better than uniform
    # on the held-out part with the run's layout: the run's own last validation loss
    last_val = [h["val_loss"] for h in history(run_dir) if "val_loss" in h][-1]
    assert abs(float(re.search(r"loss\s+([\d.]+)", val.stdout).group(1)) - last_val) < 6e-5


def test_info_describes_the_run(tmp_path, lm, env):
    text, run_dir = lm
    res = ok(run(["info", run_dir / "last.npz"], env, tmp_path))
    out = res.stdout
    arrays, meta = checkpoint.load(run_dir / "last.npz")
    n_params = sum(a.size for k, a in arrays.items() if k.startswith("param/"))
    assert re.search(rf"^parameters\s+{n_params:,}$", out, re.M)
    V = len(set(text.read_text(encoding="utf-8")))
    assert re.search(rf"^vocabulary\s+{V} chars", out, re.M)
    assert str(text.resolve()) in out
    settings = dict(re.findall(r"^  (\w+)\s+(\S+)$", out, re.M))
    assert settings["cell"] == "lstm" and settings["hidden"] == "16"
    assert settings["layers"] == "1" and settings["seq_len"] == "10"
    assert settings["batch_size"] == "4" and float(settings["lr"]) == 0.02
    vals = [h["val_loss"] for h in history(run_dir) if "val_loss" in h]
    assert re.search(r"^trained\s+150 steps", out, re.M)
    assert f"val loss    last {vals[-1]:.4f}, best {min(vals):.4f}" in out
    assert f"({min(vals) / math.log(2):.3f} bits/char)" in out


# --------------------------------------------------------------------------- help
def _subparsers(parser: argparse.ArgumentParser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action, dict(action.choices)


def test_every_flag_has_help():
    parser = build_parser()
    action, subs = _subparsers(parser)
    assert set(subs) == {"train", "sample", "eval", "info", "export", "inspect", "viz"}
    assert all(c.help and c.help.strip() for c in action._choices_actions)
    for name, p in [("rnnkit", parser), *subs.items()]:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                continue
            assert a.help and a.help.strip() and a.help != argparse.SUPPRESS, (name, a.dest)


def test_help_lists_every_flag(tmp_path, env):
    _, subs = _subparsers(build_parser())
    names = ["train", "sample", "eval", "info", "export", "inspect", "viz"]
    results = run_many([["--help"]] + [[n, "--help"] for n in names], env, tmp_path)
    top = ok(results[0]).stdout
    assert all(n in top for n in names) and "--version" in top
    for n, res in zip(names, results[1:], strict=True):
        out = ok(res).stdout
        for a in subs[n]._actions:
            for opt in a.option_strings:
                assert opt in out, (n, opt)
            if not a.option_strings and a.metavar:
                assert a.metavar in out, (n, a.metavar)


def test_resume_takes_unspecified_settings_from_the_saved_run(tmp_path, env):
    """`train --resume --out X --steps N` alone continues a run started with other flags."""
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    out = tmp_path / "run"
    flags = ["--hidden", "12", "--layers", "1", "--seq-len", "8", "--batch-size", "3",
             "--eval-every", "2", "--quiet"]
    first = run(["train", text, "--out", out, "--steps", "2", *flags], env, tmp_path)
    assert first.returncode == 0, first.stderr
    again = run(["train", "--resume", "--out", out, "--steps", "4", "--quiet"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    _, meta = checkpoint.load(out / "last.npz")
    assert meta["train_state"]["step"] == 4
    assert meta["cli"]["hidden"] == 12 and meta["cli"]["text"] == str(text)


def test_init_flag_is_used_saved_and_shown(tmp_path, corpus, env):
    ok(run(["train", corpus, "--hidden", 8, "--layers", 1, "--steps", 1, "--quiet",
            "--init", "chrono:40", "--out", tmp_path / "r"], env, tmp_path))
    model, _, _ = load_model(tmp_path / "r" / "last.npz")
    assert model.rnn.init == {"name": "chrono", "t_max": 40.0}
    info = ok(run(["info", tmp_path / "r" / "last.npz"], env, tmp_path)).stdout
    assert "init        chrono:40" in info
    assert "init={'name': 'chrono', 't_max': 40.0}" in info
