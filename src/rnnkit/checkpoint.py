"""Safe, atomic checkpoints: numpy arrays plus JSON metadata in one ``.npz`` file.

* No pickle: arrays are loaded with ``allow_pickle=False`` and the metadata is JSON, so a
  checkpoint cannot run code when it is opened.
* Atomic: the file is written to a temporary name in the same folder, flushed to disk,
  then renamed over the target. A crash at any moment leaves either the old file or the
  new one, never a half-written one. ``.npz`` members carry CRC-32 checksums, so a file
  damaged later is detected on load.

Layout: every array under its own name, plus ``__meta__``, a uint8 array holding UTF-8
JSON with ``format`` and ``version`` keys.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

FORMAT = "rnnkit-checkpoint"
VERSION = 1
META_KEY = "__meta__"
ZIP_MAGIC = b"PK\x03\x04"  # how every .npz file (a zip archive) begins


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, corrupted, truncated, unsafe or
    of another format."""


def save(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-serialisable dict) atomically.

    Returns the path written. Existing files are replaced only once the new one is
    complete on disk.
    """
    path = Path(path)
    for k, v in arrays.items():
        if k == META_KEY:
            raise ValueError(f"array name {META_KEY!r} is reserved")
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf":
            raise TypeError(f"arrays[{k!r}] must be a numeric numpy array, got {type(v).__name__}")
    header = {"format": FORMAT, "version": VERSION}
    for k, v in header.items():
        # a loaded meta (which holds these keys) may be saved again; another value may not,
        # or the file would not load back
        if k in meta and meta[k] != v:
            raise ValueError(f"meta key {k!r} is reserved for the checkpoint format "
                             f"(it must be {v!r} or absent), got {meta[k]!r}")
    blob = json.dumps({**meta, **header}, allow_nan=False)
    payload = dict(arrays)
    payload[META_KEY] = np.frombuffer(blob.encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        # temporary files of earlier writes that were killed midway are garbage now
        for stale in path.parent.glob(path.name + ".*.tmp"):
            stale.unlink(missing_ok=True)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _read_npz(f, path: Path) -> tuple[dict, np.ndarray]:
    """The arrays and the raw metadata bytes of an open .npz file, or CheckpointError."""
    try:
        with np.load(f, allow_pickle=False) as z:
            names = list(z.files)
            if META_KEY not in names:
                raise CheckpointError(f"{str(path)!r} is not an rnnkit checkpoint (no metadata)")
            arrays = {k: z[k] for k in names if k != META_KEY}
            raw = z[META_KEY]
    except CheckpointError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise CheckpointError(
                f"{str(path)!r} holds pickled objects; rnnkit never loads pickle (unsafe)"
            ) from None
        raise CheckpointError(f"{str(path)!r} is corrupted or not a checkpoint: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
            zlib.error) as e:
        # damaged zip headers surface as "unsupported compression" (NotImplementedError),
        # "encrypted" (RuntimeError), or a bad deflate stream (zlib.error)
        raise CheckpointError(
            f"{str(path)!r} is corrupted or truncated ({type(e).__name__}: {e})"
        ) from None
    return arrays, raw


def load(path) -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save`. Returns ``(arrays, meta)``.

    Raises :class:`CheckpointError` (a ValueError) naming the file if it is missing,
    not an rnnkit checkpoint, truncated, corrupted, or holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {e}") from None
    # numpy reads from our file object: np.load(path) leaks its own handle when the zip
    # directory is damaged
    with f:
        head = f.read(len(ZIP_MAGIC))
        if not head:
            raise CheckpointError(f"{str(path)!r} is empty (0 bytes), not a checkpoint")
        if head != ZIP_MAGIC:
            # np.load would take any other file for a pickle or a single .npy array
            raise CheckpointError(
                f"{str(path)!r} is not an rnnkit checkpoint (not an .npz archive)")
        f.seek(0)
        arrays, raw = _read_npz(f, path)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} has unreadable metadata: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an rnnkit checkpoint")
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{str(path)!r} has an invalid format version {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{str(path)!r} was written by a newer rnnkit (format version {meta['version']}, "
            f"this one reads up to {VERSION})"
        )
    return arrays, meta
