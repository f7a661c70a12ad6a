"""Checkpoints: exact round trips, atomic writes (a failure or a SIGKILL mid-write never
damages the previous file), and damaged, foreign or unsafe files rejected with
CheckpointError without ever unpickling."""

import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.checkpoint import CheckpointError

META = {"model": "LanguageModel", "config": {"hidden": 5, "cell": "lstm"}, "step": 12,
        "loss": 1.25, "text": "café 🦕", "tags": [1, "a", None], "flag": True}


def sample_arrays():
    rng = np.random.default_rng(0)
    return {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": rng.standard_normal((2, 3, 2)),
        "i64": rng.integers(-10**12, 10**12, 5),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "u8": np.array([0, 255, 7], dtype=np.uint8),
        "bool": np.array([[True, False], [False, True]]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), np.float32),
        "param/l0.W_x": np.ones((2, 2)),  # names with '/' and '.' as models use them
    }


def assert_same_arrays(got, want):
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype, k
        assert got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------- round trip
def test_round_trip_arrays_and_metadata(tmp_path):
    path = tmp_path / "ck.npz"
    arrays = sample_arrays()
    assert checkpoint.save(path, arrays, META) == path
    got, meta = checkpoint.load(path)
    assert_same_arrays(got, arrays)
    assert meta == {**META, "format": "rnnkit-checkpoint", "version": 1}
    assert files_in(tmp_path) == ["ck.npz"]


def test_round_trip_creates_folders_and_overwrites(tmp_path):
    path = tmp_path / "a" / "b" / "ck.npz"
    checkpoint.save(path, {"x": np.zeros(3)}, {"i": 1})
    checkpoint.save(str(path), {"y": np.ones(2, np.int8)}, {"i": 2})
    got, meta = checkpoint.load(str(path))
    assert_same_arrays(got, {"y": np.ones(2, np.int8)})
    assert meta["i"] == 2
    assert files_in(path.parent) == ["ck.npz"]


def test_loaded_meta_can_be_saved_again(tmp_path):
    checkpoint.save(tmp_path / "a.npz", {}, META)
    _, meta = checkpoint.load(tmp_path / "a.npz")
    checkpoint.save(tmp_path / "b.npz", {}, meta)
    assert checkpoint.load(tmp_path / "b.npz")[1] == meta


@pytest.mark.parametrize(("arrays", "meta", "exc", "message"), [
    ({"__meta__": np.zeros(1)}, {}, ValueError, "array name '__meta__' is reserved"),
    ({"x": np.array(["a"])}, {}, TypeError, r"arrays\['x'\] must be a numeric numpy array"),
    ({"x": np.array([None], dtype=object)}, {}, TypeError, r"arrays\['x'\] must be a numeric"),
    ({"x": [1.0, 2.0]}, {}, TypeError, r"arrays\['x'\] must be a numeric numpy array, got list"),
    ({}, {"loss": float("nan")}, ValueError, "Out of range float values are not JSON compliant"),
    ({}, {"obj": object()}, TypeError, "not JSON serializable"),
    ({}, {"version": 2}, ValueError, "meta key 'version' is reserved for the checkpoint format"),
    ({}, {"format": "mine"}, ValueError, "meta key 'format' is reserved"),
])
def test_save_rejects_bad_input_and_keeps_the_old_file(tmp_path, arrays, meta, exc, message):
    path = tmp_path / "ck.npz"
    checkpoint.save(path, {"w": np.arange(3.0)}, {"i": 0})
    with pytest.raises(exc, match=message):
        checkpoint.save(path, arrays, meta)
    assert files_in(tmp_path) == ["ck.npz"]
    got, m = checkpoint.load(path)
    assert m["i"] == 0 and got["w"].tolist() == [0.0, 1.0, 2.0]


# ---------------------------------------------------------------------- atomicity
def old_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    checkpoint.save(path, {"w": np.full(1000, 1.0)}, {"version_of_model": "old"})
    return path


def assert_old_intact(path):
    arrays, meta = checkpoint.load(path)
    assert meta["version_of_model"] == "old"
    np.testing.assert_array_equal(arrays["w"], np.full(1000, 1.0))
    assert files_in(path.parent) == [path.name], "no temporary file may be left behind"


def test_failure_inside_savez_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = old_checkpoint(tmp_path)
    real_savez = np.savez

    def savez_then_fail(f, **arrays):
        real_savez(f, **arrays)  # a complete archive reaches the temporary file...
        f.write(b"\x00" * 100)
        raise OSError("disk full")  # ...and then the write fails

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"w": np.full(1000, 2.0)}, {"version_of_model": "new"})
    assert_old_intact(path)


def test_partial_write_then_failure(tmp_path, monkeypatch):
    path = old_checkpoint(tmp_path)

    def write_half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04" + b"\x01" * 5000)
        raise RuntimeError("interrupted midway")

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(RuntimeError, match="interrupted midway"):
        checkpoint.save(path, {"w": np.full(1000, 2.0)}, {"version_of_model": "new"})
    assert_old_intact(path)


def test_keyboard_interrupt_during_fsync(tmp_path, monkeypatch):
    path = old_checkpoint(tmp_path)

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"w": np.full(1000, 2.0)}, {"version_of_model": "new"})
    monkeypatch.undo()
    assert_old_intact(path)


def test_failure_in_replace_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = old_checkpoint(tmp_path)
    seen = []

    def failing_replace(src, dst):
        seen.append(os.path.getsize(src))  # the new file was complete when the rename failed
        raise PermissionError("rename refused")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError, match="rename refused"):
        checkpoint.save(path, {"w": np.full(1000, 2.0)}, {"version_of_model": "new"})
    monkeypatch.undo()
    assert seen and seen[0] > 8000
    assert_old_intact(path)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from rnnkit import checkpoint

    path, i = sys.argv[1], int(sys.argv[2])
    # two big arrays, written alternately: every complete file holds w == meta["i"] % 2
    big = [np.zeros(1_000_000), np.ones(1_000_000)]
    print("ready", flush=True)
    while True:
        i += 1
        checkpoint.save(path, {"w": big[i % 2], "i": np.array(i)}, {"i": i})
""")


def wait_for_temp_file(folder, timeout=5.0):
    """Poll until a temporary checkpoint file appears (a write is under way)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(n.endswith(".tmp") for n in os.listdir(folder)):
            return True
        time.sleep(0.0005)
    return False


def test_sigkill_mid_write_never_damages_the_checkpoint(tmp_path):
    """A writer saving 8 MB checkpoints in a loop over an existing one is SIGKILLed, at a
    random moment (odd rounds) or a few ms after a temporary file appears (even rounds,
    so that some kills surely land mid-write). The checkpoint must always load and hold
    either the old content or a complete newer one."""
    path = tmp_path / "ck.npz"
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    checkpoint.save(path, {"w": np.zeros(1_000_000), "i": np.array(0)}, {"i": 0})
    rng = np.random.default_rng(0)
    last, temps_seen = 0, 0
    for round_ in range(1, 7):
        first = 1000 * round_  # this writer saves first, first + 1, ...
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(first - 1)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            if round_ % 2:
                time.sleep(rng.uniform(0.02, 0.25))
            else:
                assert wait_for_temp_file(tmp_path)
                time.sleep(rng.uniform(0.0, 0.004))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        arrays, meta = checkpoint.load(path)  # always loads: old or new, never half
        i = meta["i"]
        assert i == last or first <= i < first + 1000, "the old content or a newer one"
        assert arrays["i"] == i
        assert arrays["w"].shape == (1_000_000,)
        assert arrays["w"].min() == arrays["w"].max() == i % 2
        last = i
        # a kill mid-write leaves at most a temporary file beside it, never the target
        leftovers = [n for n in files_in(tmp_path) if n not in ("ck.npz", "writer.py")]
        assert all(n.startswith("ck.npz.") and n.endswith(".tmp") for n in leftovers)
        temps_seen += bool(leftovers)
        for n in leftovers:
            (tmp_path / n).unlink()
    assert last > 0, "no writer ever completed a checkpoint"
    assert temps_seen > 0, "no kill landed mid-write; the test proved nothing"


# ---------------------------------------------------------------------- damaged files
def good_file(tmp_path, name="ck.npz"):
    path = tmp_path / name
    checkpoint.save(path, {"w": np.arange(2000.0), "i": np.arange(7)}, {"step": 3})
    return path


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="nope.npz' does not exist$"):
        checkpoint.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is a folder, not a file$"):
        checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="'/dev/null' is not a regular file$"):
        checkpoint.load("/dev/null")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_truncated_file(tmp_path):
    path = good_file(tmp_path)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 1, 10):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=r"ck.npz.*(corrupted|truncated)"):
            checkpoint.load(path)


def test_flipped_bytes_in_the_middle(tmp_path):
    path = good_file(tmp_path)
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 8] = bytes(b ^ 0xFF for b in raw[mid:mid + 8])
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"corrupted.*CRC"):
        checkpoint.load(path)


def test_every_single_byte_flip_is_detected_or_harmless(tmp_path):
    """Flip each byte of a small checkpoint in turn: the load must raise CheckpointError
    or return exactly the saved content (some header bytes, e.g. timestamps, are unused)."""
    path = tmp_path / "ck.npz"
    arrays = {"w": np.arange(6.0).reshape(2, 3), "i": np.arange(3, dtype=np.int32),
              "b": np.array([True, False])}
    checkpoint.save(path, arrays, {"step": 3})
    raw = path.read_bytes()
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(raw)
    detected = 0
    for pos in range(len(raw)):
        flip = 0x01 if pos % 2 else 0xFF
        with open(damaged, "r+b") as f:  # in place: rewriting whole files is slow on ext4
            f.seek(pos)
            f.write(bytes([raw[pos] ^ flip]))
        try:
            got, meta = checkpoint.load(damaged)
        except CheckpointError:
            detected += 1
        else:
            assert_same_arrays(got, arrays)
            assert meta == {"step": 3, "format": "rnnkit-checkpoint", "version": 1}, pos
        with open(damaged, "r+b") as f:
            f.seek(pos)
            f.write(raw[pos:pos + 1])
    assert detected > len(raw) // 2


def test_empty_file(tmp_path):
    path = tmp_path / "ck.npz"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", [b"hello, world\n", b"\x89PNG\r\n\x1a\n" + bytes(50),
                                     b"PK"], ids=["text", "png", "2-bytes"])
def test_foreign_files(tmp_path, content):
    path = tmp_path / "ck.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        checkpoint.load(path)


def test_single_npy_file(tmp_path):
    path = tmp_path / "ck.npz"
    with open(path, "wb") as f:
        np.save(f, np.arange(4))
    with pytest.raises(CheckpointError, match=r"not an rnnkit checkpoint \(not an .npz archive\)"):
        checkpoint.load(path)


def test_npz_without_metadata(tmp_path):
    path = tmp_path / "ck.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"is not an rnnkit checkpoint \(no metadata\)"):
        checkpoint.load(path)


def meta_bytes(meta):
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


@pytest.mark.parametrize(("meta", "message"), [
    (np.frombuffer(b"\xff\xfe{", dtype=np.uint8), "has unreadable metadata"),
    (np.frombuffer(b"{not json", dtype=np.uint8), "has unreadable metadata"),
    (meta_bytes([1, 2]), "is not an rnnkit checkpoint$"),
    (meta_bytes({"format": "other", "version": 1}), "is not an rnnkit checkpoint$"),
    (meta_bytes({"format": "rnnkit-checkpoint", "version": 99}),
     r"written by a newer rnnkit \(format version 99, this one reads up to 1\)"),
    (meta_bytes({"format": "rnnkit-checkpoint", "version": "1"}), "invalid format version '1'"),
])
def test_bad_metadata(tmp_path, meta, message):
    path = tmp_path / "ck.npz"
    np.savez(path, w=np.ones(3), __meta__=meta)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


class Payload:
    """Unpickling this object creates a folder: the proof that pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("where", ["array", "metadata", "no-metadata"])
def test_pickled_object_arrays_are_refused_without_unpickling(tmp_path, where):
    marker = tmp_path / "pickle-ran"
    evil = np.array([Payload(marker)], dtype=object)
    good_meta = meta_bytes({"format": "rnnkit-checkpoint", "version": 1})
    payload = {"array": {"__meta__": good_meta, "w": np.ones(2), "x": evil},
               "metadata": {"__meta__": evil, "w": np.ones(2)},
               "no-metadata": {"x": evil}}[where]
    path = tmp_path / "ck.npz"
    np.savez(path, **payload)  # np.savez pickles object arrays
    message = "no metadata" if where == "no-metadata" else "holds pickled objects"
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)
    assert not marker.exists(), "loading a checkpoint must never unpickle"
    # the control: the file really is live
    with np.load(path, allow_pickle=True) as z:
        z["__meta__" if where == "metadata" else "x"]
    assert marker.is_dir()


def test_raw_pickle_file_is_refused_without_unpickling(tmp_path):
    import pickle

    marker = tmp_path / "pickle-ran"
    path = tmp_path / "ck.npz"
    path.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()


def test_zip_with_other_members(tmp_path):
    path = tmp_path / "ck.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="no metadata"):
        checkpoint.load(path)


def test_compressed_checkpoint_loads(tmp_path):
    path = tmp_path / "ck.npz"
    np.savez_compressed(path, w=np.arange(10.0),
                        __meta__=meta_bytes({"format": "rnnkit-checkpoint", "version": 1}))
    arrays, meta = checkpoint.load(path)
    np.testing.assert_array_equal(arrays["w"], np.arange(10.0))
    raw = bytearray(path.read_bytes())
    for pos in range(40, len(raw) - 200, 7):  # damaged deflate streams, CRCs, headers
        b = bytearray(raw)
        b[pos] ^= 0xFF
        path.write_bytes(bytes(b))
        try:
            got, _ = checkpoint.load(path)
        except CheckpointError:
            continue
        np.testing.assert_array_equal(got["w"], np.arange(10.0))


# ---------------------------------------------------------------------- declared sizes
GOOD_META = {"format": "rnnkit-checkpoint", "version": 1}


def npy_bytes(array, header_shape=None):
    """The .npy bytes of ``array``; ``header_shape`` replaces the shape its header declares
    (a header that lies about the data that follows it)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    raw = buf.getvalue()
    if header_shape is not None:
        hlen = int.from_bytes(raw[8:10], "little")
        header = raw[10:10 + hlen].decode("latin1")
        new = header.replace(f"'shape': {array.shape}", f"'shape': {header_shape}")
        new = new.rstrip().ljust(hlen - 1) + "\n"
        assert len(new) == hlen, "the new shape must fit in the header's padding"
        raw = raw[:10] + new.encode("latin1") + raw[10 + hlen:]
    return raw


def write_zip(path, members: dict, compression=zipfile.ZIP_STORED):
    """A zip of raw members (name -> bytes), with the metadata member added."""
    with zipfile.ZipFile(path, "w", compression) as z:
        z.writestr("__meta__.npy", npy_bytes(meta_bytes(GOOD_META)))
        for name, raw in members.items():
            z.writestr(name, raw)


def patch_declared_size(path, member: str, size: int):
    """Overwrite the inflated size that the central directory declares for ``member``."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    at = raw.index(b"PK\x01\x02")
    while raw[at + 46:at + 46 + len(name)] != name:
        at = raw.index(b"PK\x01\x02", at + 4)
    raw[at + 24:at + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(raw))


def test_a_lying_array_header_is_refused_before_allocating(tmp_path):
    """An .npy header claiming (40000, 160000) float32 (24 GiB) over 400 real bytes: refused
    from the header, with the memory the load takes bounded by the file's size."""
    import tracemalloc

    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros((10, 10), np.float32),
                                        header_shape=(40000, 160000))})
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"'w' declares shape \(40000, 160000\) of "
                           r"float32 \(25,600,000,000 bytes\) but holds 400 bytes"):
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_declared_inflated_size_beyond_deflate_is_refused_before_inflating(tmp_path):
    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(1000))}, zipfile.ZIP_DEFLATED)
    patch_declared_size(path, "w.npy", 3_000_000_000)
    with pytest.raises(CheckpointError, match=r"member 'w.npy' declares 3,000,000,000 bytes "
                       r"inflated from \d+ compressed, more than deflate can give"):
        checkpoint.load(path)


def test_a_member_that_inflates_past_its_declared_size_is_cut_there(tmp_path):
    """A small declared size over a stream that inflates to 8 MB: only the declared bytes
    are inflated, and the checksum refuses them."""
    import tracemalloc

    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(1_000_000))}, zipfile.ZIP_DEFLATED)
    patch_declared_size(path, "w.npy", 200)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="corrupted"):
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_stored_members_must_hold_what_they_declare(tmp_path):
    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(100))})
    patch_declared_size(path, "w.npy", 10**9)
    with pytest.raises(CheckpointError, match=r"'w.npy' declares 1,000,000,000 bytes but "
                       "stores 928"):
        checkpoint.load(path)


def test_overlapping_members_are_refused(tmp_path):
    """Two directory entries over the same compressed bytes (the overlapping zip bomb)."""
    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(100_000))}, zipfile.ZIP_DEFLATED)
    raw = path.read_bytes()
    start = raw.index(b"PK\x01\x02")
    end = raw.index(b"PK\x05\x06")
    entries = raw[start:end]
    second = entries.index(b"PK\x01\x02", 4)
    w_entry = entries[second:]
    dups = []
    for letter in "abcdefghijklmnopqrst":  # the same bytes under the names a.npy ... t.npy
        dup = bytearray(w_entry)
        dup[46:47] = letter.encode()
        dups.append(bytes(dup))
    eocd = bytearray(raw[end:])
    n = 2 + len(dups)
    eocd[8:10] = struct.pack("<H", n)
    eocd[10:12] = struct.pack("<H", n)
    cd = entries + b"".join(dups)
    eocd[12:16] = struct.pack("<I", len(cd))
    path.write_bytes(raw[:start] + cd + bytes(eocd))
    with pytest.raises(CheckpointError, match=r"declares [\d,]+ bytes of members in a file of "
                       r"[\d,]+ \(overlapping or corrupted members\)"):
        checkpoint.load(path)


@pytest.mark.parametrize(("array", "dtype_name"), [
    (np.array([1 + 2j, 3j]), "complex128"),
    (np.array(["ab", "c"]), "<U2"),
    (np.array([b"ab"]), "|S2"),
    (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "a"),
    (np.array(np.datetime64("2024-01-01")), "datetime64"),
])
def test_arrays_that_are_not_numbers_are_refused(tmp_path, array, dtype_name):
    path = tmp_path / "ck.npz"
    write_zip(path, {"x.npy": npy_bytes(array)})
    with pytest.raises(CheckpointError, match=rf"array 'x' has dtype .*{dtype_name}.*, not a "
                       "number type"):
        checkpoint.load(path)


def test_other_compression_methods_and_members_are_refused(tmp_path):
    path = tmp_path / "ck.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(10))}, zipfile.ZIP_BZIP2)
    with pytest.raises(CheckpointError, match="compression method 12; rnnkit reads stored or "
                       "deflated members only"):
        checkpoint.load(path)
    write_zip(path, {"w.npy": npy_bytes(np.zeros(10)), "notes.txt": b"hello"})
    with pytest.raises(CheckpointError, match="a member 'notes.txt' that is not an array"):
        checkpoint.load(path)


@pytest.mark.parametrize(("blob", "message"), [
    (b'{"format": "rnnkit-checkpoint", "version": 1, "lr": NaN}', "NaN is not a JSON number"),
    (b'{"format": "rnnkit-checkpoint", "version": 1, "lr": -Infinity}', "-Infinity is not"),
    (b'{"format": "rnnkit-checkpoint", "version": 1, "lr": 1e999}', "1e999 is too large"),
    (b"[" * 100_000 + b"]" * 100_000, "unreadable metadata"),
])
def test_metadata_that_is_not_plain_json_is_refused(tmp_path, blob, message):
    path = tmp_path / "ck.npz"
    np.savez(path, w=np.ones(3), __meta__=np.frombuffer(blob, dtype=np.uint8))
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_metadata_must_be_bytes(tmp_path):
    path = tmp_path / "ck.npz"
    np.savez(path, __meta__=np.zeros((2, 2)))
    with pytest.raises(CheckpointError, match="unreadable metadata"):
        checkpoint.load(path)


def test_save_names_the_file_when_a_write_fails(tmp_path, monkeypatch):
    import errno

    path = old_checkpoint(tmp_path)

    def full(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as info:
        checkpoint.save(path, {"w": np.zeros(3)}, {})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    monkeypatch.undo()
    assert_old_intact(path)


def test_saved_files_get_the_permissions_of_a_new_file(tmp_path):
    # written through a private temporary file, then given 0666 less the umask, as open()
    # would: a run's checkpoints are as readable as its other files
    old = os.umask(0o027)
    try:
        path = checkpoint.save(tmp_path / "a.npz", {"w": np.zeros(2)}, {"x": 1})
        other = tmp_path / "plain.txt"
        other.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(other.stat().st_mode) == 0o640
