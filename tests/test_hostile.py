"""Hostile files and broken runs, through the real command.

Each class of bad checkpoint, bad flag, bad text and failing system (disk full, file size
limit, permission denied, a folder where a file belongs, too little memory) is crafted here
and given to ``rnnkit`` in a subprocess whose address space is limited to 1 GiB
(``resource.setrlimit(RLIMIT_AS)``: far less than the 25 to 48 GiB the hostile files
claim). Every run must end in one line ``rnnkit: error: ...`` naming the file (or flag) and
the cause, with the documented exit status (2: the input cannot be used; 1: the system
failed the run, or it diverged), no traceback, and nothing saved changed.

The runs go side by side (:func:`run_many`) on a tiny model trained once per module.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import checkpoint

LIMIT = 2**30  # the address space of every run: numpy's import needs ~0.5 GiB of it
RNNKIT = [sys.executable, "-m", "rnnkit.cli"]
TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "10", "--batch-size", "4",
        "--eval-every", "2", "--sample-every", "0", "--quiet", "--engine", "numpy"]
ERROR = "rnnkit: error: "


# --------------------------------------------------------------------------- running rnnkit
@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """UTF-8 output, this tree's rnnkit first on the path, matplotlib hidden (a shim that
    raises ImportError: drawing loss.png costs a second per run)."""
    shim = tmp_path_factory.mktemp("no_matplotlib")
    (shim / "matplotlib.py").write_text('raise ImportError("hidden by the tests")\n')
    e = dict(os.environ, PYTHONIOENCODING="utf-8")
    e.pop("PYTHONWARNINGS", None)
    src = str(Path(rnnkit.__file__).resolve().parent.parent)
    e["PYTHONPATH"] = os.pathsep.join([str(shim), src, *filter(None, [e.get("PYTHONPATH")])])
    return e


def limits(fsize: int | None = None):
    """preexec_fn of the runs: 1 GiB of address space (and a file size limit), Ctrl-C at
    its default (a shell starts background jobs with it ignored)."""
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return apply


def run_many(arglists, env, cwd, command=RNNKIT, fsize=None, timeout=120):
    """Run several ``rnnkit`` commands side by side under the limits; their results."""
    procs = [subprocess.Popen([*command, *map(str, a)], cwd=cwd, env=env, text=True,
                              encoding="utf-8", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=limits(fsize)) for a in arglists]
    done = []
    for a, p in zip(arglists, procs, strict=True):
        out, err = p.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess([*command, *map(str, a)], p.returncode, out,
                                                err))
    return done


def one_line_error(res, *words, code=2) -> str:
    """Assert the run ended in one ``rnnkit: error:`` line (the last of stderr, the only
    one unless the run printed notes first) holding ``words``, with exit status ``code``."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, f"{res.args}: exit {res.returncode}\n{res.stderr}"
    lines = res.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(ERROR)]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    return errors[0]


def snapshot(folder: Path) -> dict:
    """Every file under a folder: relative name -> (bytes, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def step_of(path: Path) -> tuple[int, int]:
    meta = checkpoint.load(path)[1]
    return meta["train_state"]["step"], meta["optimizer"]["t"]


def same_arrays(a: Path, b: Path) -> bool:
    x, y = checkpoint.load(a)[0], checkpoint.load(b)[0]
    return sorted(x) == sorted(y) and all(x[k].tobytes() == y[k].tobytes() for k in x)


# --------------------------------------------------------------------------- runs and files
@pytest.fixture(scope="module")
def runs(tmp_path_factory, env):
    """Runs of the built-in names, 4 steps each: "base" (constant learning rate),
    "cosine" (a cosine schedule of 4 steps), "six" (6 steps, the reference of resumes)."""
    d = tmp_path_factory.mktemp("runs")
    results = run_many([["train", *TINY, "--steps", 4, "--out", d / "base"],
                        ["train", *TINY, "--steps", 4, "--schedule", "cosine",
                         "--out", d / "cosine"],
                        ["train", *TINY, "--steps", 6, "--out", d / "six"]], env, d)
    for r in results:
        assert r.returncode == 0, r.stderr
    return d


def raw_save(path: Path, arrays: dict, meta) -> Path:
    """An .npz as np.savez writes it, with metadata (a dict, or raw bytes) that nothing
    checked: how a hostile file is made."""
    blob = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    np.savez(path, **arrays, __meta__=np.frombuffer(blob, dtype=np.uint8))
    return path


def npy(array, shape=None) -> bytes:
    """The .npy bytes of ``array``, its header declaring ``shape`` instead (a lie)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    raw = buf.getvalue()
    if shape is not None:
        n = int.from_bytes(raw[8:10], "little")
        head = raw[10:10 + n].decode("latin1").replace(f"'shape': {array.shape}",
                                                         f"'shape': {shape}")
        raw = raw[:10] + (head.rstrip().ljust(n - 1) + "\n").encode("latin1") + raw[10 + n:]
    return raw


def zip_members(path: Path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return path


def declare_size(path: Path, member: str, size: int) -> None:
    """Overwrite the inflated size the central directory declares for ``member``."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")
    while raw[at + 46:at + 46 + len(member)] != member.encode():
        at = raw.index(b"PK\x01\x02", at + 4)
    raw[at + 24:at + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(raw))


def with_meta(meta: dict, path: str, value) -> dict:
    """A copy of meta with the entry at ``path`` ("a.b.c") set to value (or deleted for
    the value DELETE)."""
    meta = json.loads(json.dumps(meta))
    *parents, last = path.split(".")
    d = meta
    for k in parents:
        d = d[k]
    if value is DELETE:
        del d[last]
    else:
        d[last] = value
    return meta


DELETE = object()


def hostile_files(base: Path, bad: Path) -> list[tuple[str, list[str]]]:
    """Every class of bad checkpoint: (file name, words its one-line error must hold).
    The arrays and metadata are those of a real run (``base``), then spoiled."""
    arrays, meta = checkpoint.load(base / "last.npz")
    W = "param/rnn.l0.W_x"
    head_b = "param/head.b"
    cases = []

    def spoil(name, words, arrays_=None, meta_=None, raw=None):
        if raw is None:
            raw_save(bad / name, arrays if arrays_ is None else arrays_,
                     meta if meta_ is None else meta_)
        cases.append((name, [name, *words]))

    # files that claim more memory than they hold
    spoil("hidden_40000.npz", ["parameter 'rnn.l0.W_x' has shape (27, 32)",
                               "config implies (27, 160000)"],
          meta_=with_meta(meta, "config.hidden_size", 40000))
    spoil("layers_1e6.npz", ["num_layers is 1,000,000", "only 5 parameter arrays"],
          meta_=with_meta(meta, "config.num_layers", 10**6))
    members = {f"{k}.npy": npy(v) for k, v in arrays.items()}
    members["__meta__.npy"] = npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    zip_members(bad / "lying_header.npz",
                {**members, f"{W}.npy": npy(arrays[W], shape=(40000, 160000))})
    cases.append(("lying_header.npz", ["array 'param/rnn.l0.W_x' declares shape "
                                       "(40000, 160000) of float32", "but holds 3,456 bytes"]))
    zip_members(bad / "deflate_bomb.npz", members, zipfile.ZIP_DEFLATED)
    declare_size(bad / "deflate_bomb.npz", f"{W}.npy", 3_000_000_000)
    cases.append(("deflate_bomb.npz", ["declares 3,000,000,000 bytes inflated",
                                       "more than deflate can give"]))
    # a real 800 MB of zeros in 0.8 MB, as a parameter: refused from its declared shape
    zeros = np.zeros((100_000, 2_000), np.float32)
    zip_members(bad / "inflates_800MB.npz", {**members, f"{W}.npy": npy(zeros)},
                zipfile.ZIP_DEFLATED)
    cases.append(("inflates_800MB.npz", ["'rnn.l0.W_x' has shape (100000, 2000)"]))
    # files that used to end in tracebacks
    spoil("complex.npz", ["array 'param/head.b' has dtype complex64, not a number type"],
          {**arrays, head_b: arrays[head_b] + 1j})
    spoil("string.npz", ["array 'param/head.b' has dtype <U1, not a number type"],
          {**arrays, head_b: np.array(["x"] * 27)})
    spoil("pickle.npz", ["holds pickled objects", "never loads pickle"],
          {**arrays, head_b: np.array([{"a": 1}], dtype=object)})
    tokens = meta["vocab"]["tokens"]
    spoil("vocab_duplicate.npz", ["the vocabulary holds the token 'a' twice"],
          meta_=with_meta(meta, "vocab.tokens", [*tokens[:-1], "a"]))
    spoil("vocab_string.npz", ["has no vocabulary (vocab is str)"],
          meta_=with_meta(meta, "vocab", "abc"))
    spoil("vocab_short.npz", ["the vocabulary has 26 tokens but the model predicts 27"],
          meta_=with_meta(meta, "vocab.tokens", tokens[:-1]))
    spoil("defaults_list.npz", ["sample_defaults must be a dict, got list"],
          meta_=with_meta(meta, "sample_defaults", [1, 2]))
    spoil("defaults_length.npz", ["sample_defaults.length must be an integer in [1, "
                                  "1,000,000], got 1000000000000"],
          meta_=with_meta(meta, "sample_defaults.length", 10**12))
    spoil("defaults_prime.npz", ["sample_defaults.prime has 1 token(s) outside the vocabulary"],
          meta_=with_meta(meta, "sample_defaults.prime", "Z"))
    spoil("no_step.npz", ["train_state.step must be an integer >= 0, got None"],
          meta_=with_meta(meta, "train_state.step", DELETE))
    spoil("history_text.npz", ["a history record holds loss 'low', not a number"],
          meta_=with_meta(meta, "train_state.history", [{"step": 1, "loss": "low"}]))
    # inconsistent files
    spoil("nan_weight.npz", ["parameter 'head.b' holds NaN or inf"],
          {**arrays, head_b: np.full(27, np.nan, np.float32)})
    spoil("int_weight.npz", ["parameter 'head.b' has dtype int64, expected floats"],
          {**arrays, head_b: np.zeros(27, np.int64)})
    spoil("extra_weight.npz", ["holds parameters this model does not have: 'rnn.l1.W_x'"],
          {**arrays, "param/rnn.l1.W_x": arrays[W]})
    spoil("no_weight.npz", ["has no parameter 'head.b'"],
          {k: v for k, v in arrays.items() if k != head_b})
    spoil("unknown_model.npz", ["unknown model 'Transformer'"],
          meta_=with_meta(meta, "model", "Transformer"))
    spoil("config_list.npz", ["invalid model config: a list, not a dict"],
          meta_=with_meta(meta, "config", [1]))
    spoil("config_string_size.npz", ["config hidden_size must be an integer >= 1, got '8'"],
          meta_=with_meta(meta, "config.hidden_size", "8"))
    spoil("nan_json.npz", ["unreadable metadata", "NaN is not a JSON number"],
          meta_=json.dumps(meta).replace('"lr": 0.002', '"lr": NaN', 1).encode())
    data = (base / "last.npz").read_bytes()
    for name, blob in {"truncated.npz": data[: len(data) // 2], "empty.npz": b"",
                       "text.npz": b"le cafe\n", "flipped.npz": data[:5000]
                       + bytes(b ^ 0xFF for b in data[5000:5008]) + data[5008:]}.items():
        (bad / name).write_bytes(blob)
        cases.append((name, []))
    (bad / "folder.npz").mkdir()
    cases.append(("folder.npz", ["is a folder, not a file"]))
    cases.append(("absent.npz", ["does not exist"]))
    return cases


@pytest.fixture(scope="module")
def bad_files(runs, tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad")
    return bad, hostile_files(runs / "base", bad)


# --------------------------------------------------------------------------- bad checkpoints
def test_hostile_checkpoints_give_one_line_and_take_no_memory(tmp_path, bad_files, env):
    """info on every hostile file, sample and eval on a few: one line, exit 2, the bad
    files untouched, in 1 GiB of address space (the files claim 25 to 48 GiB)."""
    bad, cases = bad_files
    text = tmp_path / "names.txt"
    text.write_text("ab\nba\n")
    before = snapshot(bad)
    cmds = [["info", bad / name] for name, _ in cases]
    some = ["hidden_40000.npz", "vocab_short.npz", "defaults_length.npz", "complex.npz"]
    cmds += [["sample", bad / n] for n in some] + [["eval", bad / n, text] for n in some[:2]]
    words = dict(cases)
    for cmd, res in zip(cmds, run_many(cmds, env, tmp_path), strict=True):
        one_line_error(res, *words[Path(cmd[1]).name])
        assert res.stdout == ""
    assert snapshot(bad) == before


def spoiled_run(runs: Path, dest: Path, what: str) -> Path:
    """A copy of the base run whose last.npz has one thing wrong for a resume."""
    shutil.copytree(runs / "base", dest)
    arrays, meta = checkpoint.load(dest / "last.npz")
    opt_m = next(k for k in arrays if k.startswith("opt/") and k.endswith("/m"))
    if what == "inf_moment":
        arrays[opt_m] = np.full_like(arrays[opt_m], np.inf)
    elif what == "no_optimizer":
        del meta["optimizer"]
    elif what == "no_rng":
        del meta["rng"]
    elif what == "carry_shape":
        arrays["carry/0"] = np.zeros((1, 3, 8), np.float32)
    elif what == "mid_step":  # the optimizer one step ahead of the counters
        meta["optimizer"]["t"] = meta["train_state"]["step"] + 1
    elif what == "no_step":  # (without the step-named checkpoints it could fall back on)
        del meta["train_state"]["step"]
        for p in dest.glob("ckpt_step*.npz"):
            p.unlink()
    elif what == "setting_type":
        meta["cli"]["hidden"] = "8"
    raw_save(dest / "last.npz", arrays, meta)
    return dest


RESUME_CASES = {
    "inf_moment": ["--resume", "optimizer state", "holds NaN or inf"],
    "no_optimizer": ["--resume", "has no optimizer state"],
    "no_rng": ["--resume", "has no valid RNG state"],
    "carry_shape": ["--resume", "carried state carry/0 is float32 (1, 3, 8), expected "
                    "(1, 4, 8)"],
    "mid_step": ["--resume", "the optimizer has taken 5 steps but the run only 4 (a state "
                 "saved in the middle of a step)"],
    "no_step": ["--resume", "no checkpoint of", "can be resumed (last.npz: it holds no "
                "train_state step"],
    "setting_type": ["--resume", "holds the setting hidden='8', which --hidden cannot take"],
}


def test_resume_refuses_inconsistent_checkpoints_and_changes_nothing(tmp_path, runs, env):
    folders = {w: spoiled_run(runs, tmp_path / w, w) for w in RESUME_CASES}
    before = {w: snapshot(f) for w, f in folders.items()}
    cmds = [["train", "--resume", "--out", f, "--steps", 6, "--quiet"]
            for f in folders.values()]
    for (w, words), res in zip(RESUME_CASES.items(), run_many(cmds, env, tmp_path),
                               strict=True):
        one_line_error(res, *words, "last.npz")
        assert snapshot(folders[w]) == before[w], w


# --------------------------------------------------------------------------- bad input
def test_bad_input_gives_one_line(tmp_path, runs, env):
    base = runs / "base" / "last.npz"
    one = tmp_path / "one.txt"
    one.write_text("a" * 500)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "texts").mkdir()
    cases = [
        (["train", one, *TINY, "--out", tmp_path / "o1"], ["one.txt",
                                                           "a single distinct character"]),
        (["train", *TINY, "--seed", -1, "--out", tmp_path / "o2"], ["--seed", "got -1"]),
        (["train", *TINY, "--clip-value", "inf", "--out", tmp_path / "o3"],
         ["--clip-value", "finite", "got inf"]),
        (["train", *TINY, "--time", "inf", "--out", tmp_path / "o4"], ["--time", "got inf"]),
        (["train", tmp_path / "texts", *TINY, "--out", tmp_path / "o5"],
         ["texts", "is a folder, not a file"]),
        (["train", *TINY, "--out", tmp_path / "a_file"], ["--out", "a_file", "is a file, not "
                                                          "a folder"]),
        (["train", *TINY, "--schedule", "cosine", "--schedule-steps", 2, "--steps", 4,
          "--out", tmp_path / "o6"], ["--steps 4 goes past the end of the cosine schedule "
                                      "at step 2", "give --schedule-steps 4"]),
        (["train", *TINY, "--steps", 2, "--hidden", "2.5"], ["--hidden", "invalid int value"]),
        (["sample", base, "--prime", "\\"], ["--prime", "holds the escape '\\\\'"]),
        (["sample", base, "--prime", "Z9"], ["--prime", "'9'", "outside the vocabulary"]),
        (["sample", base, "--temperature", 1e-310], ["--temperature", "got 1e-310"]),
        (["sample", base, "--temperature", "nan"], ["--temperature", "got nan"]),
        (["sample", base, "--top-k", 28], ["--top-k", "[1, 27]", "got 28"]),
        (["sample", base, "--top-p", 0], ["--top-p", "(0, 1]", "got 0.0"]),
        (["sample", base, "--beam", 0], ["--beam", "got 0"]),
        (["sample", base, "--beam", 2, "--temperature", 0.5], ["--beam",
                                                               "takes no --temperature"]),
        (["sample", base, "--stop", "ab"], ["--stop", "single"]),
        (["sample", base, "--length", -1], ["--length", "got -1"]),
        (["sample", base, "--seed", -1], ["--seed", "got -1"]),
        (["eval", base, tmp_path / "texts"], ["texts", "is a folder"]),
        (["eval", base, tmp_path / "none.txt"], ["none.txt", "does not exist"]),
    ]
    for (_, words), res in zip(cases, run_many([a for a, _ in cases], env, tmp_path),
                                  strict=True):
        one_line_error(res, *words)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))


def test_a_model_too_large_for_the_memory_is_refused_before_it_is_built(tmp_path, env):
    res, = run_many([["train", *TINY, "--hidden", 100_000, "--out", tmp_path / "big"]], env,
                    tmp_path)
    one_line_error(res, "out of memory", "--hidden 100000", "40,013,900,027 parameters",
                   "lower --hidden or --layers", code=1)
    assert not (tmp_path / "big").exists()


def test_parameter_count_of_the_memory_check_is_the_models():
    from rnnkit.cli.plan import parameter_count
    from rnnkit.cli.settings import TrainCommand
    from rnnkit.models import LanguageModel

    for cell in ("rnn", "lstm", "gru"):
        for embedding, layers in ((0, 1), (5, 3)):
            cfg = TrainCommand(cell=cell, hidden=7, layers=layers, embedding=embedding)
            model = LanguageModel(11, cell, 7, layers, embedding_dim=embedding or None)
            assert parameter_count(cfg, 11) == model.num_parameters()


# --------------------------------------------------------------------------- a failing system
# `rnnkit` with one system failure injected: argv[1] names it, argv[2:] are the command's
FAULTS = textwrap.dedent("""
    import errno, os, sys, tempfile
    import numpy as np
    from rnnkit import checkpoint
    from rnnkit.cli import main

    fault, argv = sys.argv[1], sys.argv[2:]
    if fault == "disk-full":  # the third checkpoint write finds the disk full
        savez, writes = np.savez, [0]
        def full(f, **arrays):
            writes[0] += 1
            if writes[0] == 3:
                f.write(b"PK" + bytes(100))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return savez(f, **arrays)
        np.savez = full
    elif fault == "read-only":  # the output folder refuses new files
        def refuse(*a, **k):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), k.get("dir"))
        tempfile.mkstemp = refuse
    sys.exit(main(argv))
""")


def test_system_failures_give_one_line_and_lose_nothing_saved(tmp_path, runs, env):
    """A full disk in the middle of a run, a file size limit (a real one: RLIMIT_FSIZE),
    an output folder that refuses files, a path through a file: one line naming the file and
    the cause, exit 1, every checkpoint already written intact."""
    fault = [sys.executable, "-c", FAULTS]
    full, readonly = tmp_path / "full", tmp_path / "readonly"
    (tmp_path / "a_file").write_text("x")
    disk_full, read_only, not_dir = run_many(
        [["disk-full", "train", *TINY, "--steps", 8, "--out", full],
         ["read-only", "train", *TINY, "--steps", 2, "--out", readonly],
         ["none", "train", *TINY, "--steps", 2, "--out", tmp_path / "a_file" / "run"]],
        env, tmp_path, command=fault)
    one_line_error(disk_full, "no space left on the device", "continue with --resume", code=1)
    for p in full.glob("*.npz"):  # the writes before the full disk: complete
        checkpoint.load(p)
    assert not list(full.glob("*.tmp")) and (full / "last.npz").exists()
    one_line_error(read_only, "--out", "readonly", "cannot be written", "permission denied",
                   code=1)
    one_line_error(not_dir, "--out", "a_file/run", "cannot be written",
                   "a part of the path is a file, not a folder", code=1)
    # a real file size limit: the resumed run cannot write its next checkpoint
    shutil.copytree(runs / "base", tmp_path / "limited")
    before = snapshot(tmp_path / "limited")
    limited, = run_many([["train", "--resume", "--out", tmp_path / "limited", "--steps", 6,
                          "--quiet"]], env, tmp_path, fsize=2000)
    one_line_error(limited, "the file is too large", "the checkpoints already written are "
                   "intact", code=1)
    assert snapshot(tmp_path / "limited") == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_real_read_only_folder(tmp_path, env):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        res, = run_many([["train", *TINY, "--steps", 2, "--out", out]], env, tmp_path)
    finally:
        out.chmod(0o755)
    one_line_error(res, "--out", "permission denied", code=1)


def test_a_diverging_run_exits_non_zero(tmp_path, env):
    res, = run_many([["train", *TINY, "--steps", 20, "--lr", 3e38, "--out", tmp_path / "d"]],
                    env, tmp_path)
    one_line_error(res, "the losses stayed non-finite", "hold the last good weights", code=1)
    for p in (tmp_path / "d").glob("*.npz"):
        arrays, _ = checkpoint.load(p)
        assert all(np.isfinite(a).all() for a in arrays.values())


# --------------------------------------------------------------------------- resumes
def test_resume_past_the_end_of_the_schedule_is_refused(tmp_path, runs, env):
    shutil.copytree(runs / "cosine", tmp_path / "cosine")
    before = snapshot(tmp_path / "cosine")
    res, = run_many([["train", "--resume", "--out", tmp_path / "cosine", "--steps", 8]],
                    env, tmp_path)
    one_line_error(res, "--steps 8 goes past the end of the cosine schedule at step 4",
                   "--schedule-steps 4", "give --schedule-steps 8")
    assert snapshot(tmp_path / "cosine") == before


def test_resume_continues_from_the_newest_complete_checkpoint(tmp_path, runs, env):
    """last.npz older than ckpt_step4 (its write never happened), and a run whose last.npz
    is damaged: both resume from the step-4 checkpoint, to the weights of a run of 6."""
    older, damaged = tmp_path / "older", tmp_path / "damaged"
    for d in (older, damaged):
        shutil.copytree(runs / "base", d)
    shutil.copy(next(older.glob("ckpt_step0000002*.npz")), older / "last.npz")
    raw = (damaged / "last.npz").read_bytes()
    (damaged / "last.npz").write_bytes(raw[: len(raw) // 2])
    results = run_many([["train", "--resume", "--out", d, "--steps", 6] for d in
                        (older, damaged)], env, tmp_path)
    for d, res in zip((older, damaged), results, strict=True):
        assert res.returncode == 0, res.stderr
        assert "resuming from ckpt_step0000004" in res.stderr
        assert step_of(d / "last.npz") == (6, 6)
        assert same_arrays(d / "last.npz", runs / "six" / "last.npz")
        steps = [h["step"] for h in json.loads((d / "history.json").read_text())]
        assert steps == list(range(1, 7))
    assert "passed over last.npz" in results[1].stderr


# --------------------------------------------------------------------------- interrupts
# `rnnkit` whose optimizer delivers signals to its own process half-way through one step
# (after updating 2 of its parameters): argv[1] the step, argv[2] the signals
MID_STEP = textwrap.dedent("""
    import signal, sys
    from rnnkit import optim
    from rnnkit.cli import main

    at, names, argv = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
    update, count = optim.Adam._update, [0]

    def interrupted(self, p, g, s):
        update(self, p, g, s)
        if self.t == at:
            count[0] += 1
            if count[0] == 2:
                for name in names:
                    signal.raise_signal(getattr(signal, name))

    optim.Adam._update = interrupted
    sys.exit(main(argv))
""")


def test_signals_in_the_middle_of_an_optimizer_step_save_a_step_boundary(tmp_path, runs, env):
    """Two Ctrl-C, or one SIGTERM, while the optimizer is half-way through step 3: the step
    is finished, last.npz holds step 3 (with the optimizer's count 3), the exit status is
    130 or 143, and the resumed run's checkpoint is the uninterrupted one's, bit for bit."""
    twice, term = tmp_path / "twice", tmp_path / "term"
    results = run_many([[3, "SIGINT,SIGINT", "train", *TINY, "--steps", 4, "--out", twice],
                        [3, "SIGTERM", "train", *TINY, "--steps", 4, "--out", term]],
                       env, tmp_path, command=[sys.executable, "-c", MID_STEP])
    for d, res, code in zip((twice, term), results, (130, 143), strict=True):
        assert res.returncode == code, res.stderr
        assert "Traceback" not in res.stderr and "interrupted at step 3" in res.stderr
        assert step_of(d / "last.npz") == (3, 3)
    resumed = run_many([["train", "--resume", "--out", d, "--steps", 4] for d in (twice, term)],
                       env, tmp_path)
    for d, res in zip((twice, term), resumed, strict=True):
        assert res.returncode == 0, res.stderr
        assert same_arrays(d / "last.npz", runs / "base" / "last.npz")


# --------------------------------------------------------------------------- samples
def test_samples_are_shown_as_they_are(tmp_path, runs, env):
    """The prime starts the sample; a capitalised name can be typed back as --prime; an
    empty sample is an empty line."""
    base = runs / "base" / "last.npz"
    arrays, meta = checkpoint.load(base)
    arrays["param/head.b"] = arrays["param/head.b"].copy()
    arrays["param/head.b"][0] = 1e4  # "\n" (id 0) always comes first: empty names
    empty = checkpoint.save(tmp_path / "empty.npz", arrays, meta)
    lower, upper, hidden, blank = run_many([
        ["sample", base, "--prime", "ba", "--seed", 3, "--num", 3],
        ["sample", base, "--prime", "Ba", "--seed", 3, "--num", 3],
        ["sample", base, "--prime", "ba", "--seed", 3, "--hide-prime"],
        ["sample", empty, "--num", 2]], env, tmp_path)
    names = lower.stdout.splitlines()
    assert len(names) == 3 and all(n.startswith("Ba") for n in names), lower.stdout
    assert upper.stdout == lower.stdout
    assert names[0] == "Ba" + hidden.stdout.rstrip("\n")
    assert blank.returncode == 0 and blank.stdout == "\n\n"


def test_final_samples_count_empty_names_apart(capsys):
    from rnnkit.cli.train import BUILTIN, _final_samples

    class Model:
        draws = iter([[1, 2, 0], [0], [3, 0], [0], [1, 2, 0]] + [[4, 0]] * 5)

        def generate(self, prime, length, rng, stop_ids):
            return next(self.draws)

    from rnnkit.data import Vocab

    vocab = Vocab(["\n", "a", "b", "c", "d"])
    defaults = {"prime": "\n", "stop": "\n", "length": 5, "capitalize": True}
    _final_samples(Model(), vocab, "ab\nd\n", BUILTIN, defaults, 0)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["Ab", "", "C   (new)", "", "Ab"] + ["D"] * 5
    assert "1 of 8 names are not in the training list; 2 samples were empty" in err
