"""Safe, atomic checkpoints: numpy arrays plus JSON metadata in one ``.npz`` file.

* No pickle: the archive is read member by member here (never with ``np.load``); an array
  of objects (which only pickle can hold) is refused from its header, before any of it is
  read, and the metadata is JSON, so a checkpoint cannot run code when it is opened.
* Bounded: every size a file declares (the archive's member sizes, each array's shape and
  dtype) is checked against the bytes the file really holds before anything is inflated or
  allocated, so the memory a load takes is bounded by the file's real contents (a deflated
  member inflates at most :data:`MAX_INFLATION` times); a caller can check the declared
  shapes against what it expects (``load(path, check=...)``) before any array is read.
* Atomic: the file is written to a temporary name in the same folder, flushed to disk,
  then renamed over the target. A crash at any moment leaves either the old file or the
  new one, never a half-written one. ``.npz`` members carry CRC-32 checksums, so a file
  damaged later is detected on load.

Layout: every array under its own name (member ``<name>.npy``), plus ``__meta__``, a uint8
array holding UTF-8 JSON with ``format`` and ``version`` keys.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

FORMAT = "rnnkit-checkpoint"
VERSION = 1
META_KEY = "__meta__"
ZIP_MAGIC = b"PK\x03\x04"  # how every .npz file (a zip archive) begins
MAX_INFLATION = 1032  # deflate's largest ratio of inflated to compressed bytes
MAX_META_BYTES = 256 * 2**20  # the JSON metadata (a million steps of history take ~150 MB)
_LOCAL_HEADER = 30  # bytes of a zip member's local header before its name
# what a damaged archive or .npy header raises inside zipfile and numpy
_DAMAGE = (zipfile.BadZipFile, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
           zlib.error, ValueError, TypeError, struct.error, UnicodeDecodeError, OverflowError,
           SyntaxError)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, corrupted, truncated, unsafe,
    inconsistent or of another format. The message is one line naming the file."""


def save(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-serialisable dict) atomically.

    Returns the path written. Existing files are replaced only once the new one is
    complete on disk. An OSError (disk full, permission denied) names ``path`` and leaves
    the previous file as it was.
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
    try:
        _write_atomically(path, payload)
    except OSError as e:
        if e.filename is None and e.errno is not None:
            # a failed write() names no file: say which checkpoint it was
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    return path


def _write_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        as_new_file(tmp)
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


def as_new_file(path) -> None:
    """Give a temporary file (mkstemp makes it private) the permissions a new file gets:
    0666 less the umask, which can only be read by setting it (restored at once)."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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


# --------------------------------------------------------------------------- reading
def _members(z: zipfile.ZipFile, size: int, where: str) -> dict:
    """The archive's members by array name, after checking what their headers declare
    against the file's size: no duplicates, no encryption, stored or deflated only, and
    inflated sizes that the compressed bytes can really hold."""
    infos, total = {}, 0
    for info in z.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise CheckpointError(f"{where} holds a member {name!r} that is not an array")
        key = name[:-4]
        if key in infos:
            raise CheckpointError(f"{where} holds the array {key!r} twice")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{where}: member {name!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise CheckpointError(
                    f"{where}: member {name!r} declares {info.file_size:,} bytes but stores "
                    f"{info.compress_size:,} (corrupted)")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > MAX_INFLATION * info.compress_size + 64:
                raise CheckpointError(
                    f"{where}: member {name!r} declares {info.file_size:,} bytes inflated "
                    f"from {info.compress_size:,} compressed, more than deflate can give "
                    f"(corrupted or a decompression bomb)")
        else:
            raise CheckpointError(f"{where}: member {name!r} uses compression method "
                                  f"{info.compress_type}; rnnkit reads stored or deflated "
                                  "members only")
        total += info.compress_size + _LOCAL_HEADER + len(name)
        infos[key] = info
    if total > size:
        raise CheckpointError(f"{where} declares {total:,} bytes of members in a file of "
                              f"{size:,} (overlapping or corrupted members)")
    return infos


def _header(f, key: str, info: zipfile.ZipInfo, where: str):
    """The checked .npy header of an open member: (shape, dtype, fortran order), a numeric
    dtype and a shape whose bytes are those the member declares."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise CheckpointError(f"{where}: array {key!r} has .npy format version {version}, "
                              "rnnkit reads 1.0 and 2.0")
    if dtype.hasobject:
        raise CheckpointError(f"{where} holds pickled objects (array {key!r}); rnnkit never "
                              "loads pickle (unsafe)")
    if dtype.kind not in "biuf" or dtype.names is not None or dtype.shape != ():
        raise CheckpointError(f"{where}: array {key!r} has dtype {dtype}, not a number type "
                              "(bool, integer or float)")
    nbytes = math.prod(shape) * dtype.itemsize
    data_size = info.file_size - f.tell()
    if nbytes != data_size:
        raise CheckpointError(
            f"{where}: array {key!r} declares shape {tuple(shape)} of {dtype} ({nbytes:,} "
            f"bytes) but holds {data_size:,} bytes (corrupted)")
    return tuple(shape), dtype, fortran


def _read_array(z: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, where: str):
    """One member as an array (its header checked again, then its data read: the CRC-32
    is verified as the last byte comes in)."""
    with z.open(info) as f:
        shape, dtype, fortran = _header(f, key, info, where)
        nbytes = math.prod(shape) * dtype.itemsize
        buf = bytearray(nbytes)
        if f.readinto(buf) != nbytes or f.read(1):
            raise CheckpointError(f"{where}: array {key!r} is truncated")
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _read(f, path: Path, check, with_arrays: bool = True) -> tuple[dict, dict, dict]:
    """(arrays, meta, headers) of an open .npz file, in three passes: the archive's and
    every array's declared sizes; the metadata; then, after ``check(meta, headers)``, the
    arrays' data. CheckpointError for anything wrong."""
    where = repr(str(path))
    size = os.fstat(f.fileno()).st_size
    try:
        with zipfile.ZipFile(f) as z:
            infos = _members_with_meta(z, size, where)
            headers = {}
            for k, info in infos.items():
                with z.open(info) as m:
                    headers[k] = _header(m, k, info, where)[:2]
            if infos[META_KEY].file_size > MAX_META_BYTES:
                raise CheckpointError(f"{where}: its metadata declares "
                                      f"{infos[META_KEY].file_size:,} bytes, more than "
                                      f"{MAX_META_BYTES:,}")
            raw = _read_array(z, META_KEY, infos[META_KEY], where)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise CheckpointError(f"{where} has unreadable metadata (an array of "
                                      f"{raw.dtype} {raw.shape}, not bytes)")
            meta = _parse_meta(raw, where)
            del headers[META_KEY]
            if check is not None:
                check(meta, headers)
            arrays = {k: _read_array(z, k, info, where) for k, info in infos.items()
                      if k != META_KEY and with_arrays}
    except CheckpointError:
        raise
    except _DAMAGE as e:
        # damaged zip headers surface as "unsupported compression" (NotImplementedError),
        # "encrypted" (RuntimeError), a bad deflate stream (zlib.error), a bad .npy header
        # (ValueError)
        raise CheckpointError(
            f"{where} is corrupted or truncated ({type(e).__name__}: {e})") from None
    return arrays, meta, headers


def _members_with_meta(z: zipfile.ZipFile, size: int, where: str) -> dict:
    names = [i.filename for i in z.infolist()]
    if META_KEY + ".npy" not in names:
        raise CheckpointError(f"{where} is not an rnnkit checkpoint (no metadata)")
    return _members(z, size, where)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"the number {text[:20]} is too large")
    return x


def _parse_meta(raw: np.ndarray, where: str) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{where} has unreadable metadata: "
                              f"{str(e)[:200] or type(e).__name__}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an rnnkit checkpoint")
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{where} has an invalid format version {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{where} was written by a newer rnnkit (format version {version}, this one "
            f"reads up to {VERSION})")
    return meta


def _open(path, check, with_arrays: bool):
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise CheckpointError(f"checkpoint {where} is a folder, not a file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {where} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {where} is not a regular file")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"checkpoint {where} cannot be read: {e.strerror}") from None
    with f:
        head = f.read(len(ZIP_MAGIC))
        if not head:
            raise CheckpointError(f"{where} is empty (0 bytes), not a checkpoint")
        if head != ZIP_MAGIC:
            raise CheckpointError(f"{where} is not an rnnkit checkpoint (not an .npz archive)")
        f.seek(0)
        return _read(f, path, check, with_arrays)


def load(path, check=None) -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save`. Returns ``(arrays, meta)``.

    ``check(meta, headers)``, if given, is called with the metadata and every array's
    declared ``(shape, dtype)`` (``headers``, by name) before any array's data is read:
    it may refuse the file (raise CheckpointError) before its arrays take memory.

    Raises :class:`CheckpointError` (a ValueError) naming the file if it is missing,
    not an rnnkit checkpoint, truncated, corrupted, declares more than it holds, holds
    anything but numeric arrays (pickled objects included) or unreadable metadata.
    """
    arrays, meta, _ = _open(path, check, True)
    return arrays, meta


def read_meta(path) -> tuple[dict, dict]:
    """The metadata and the arrays' declared ``(shape, dtype)`` of a checkpoint, checked as
    :func:`load` checks them, without reading the arrays' data (nor their checksums)."""
    _, meta, headers = _open(path, None, False)
    return meta, headers
