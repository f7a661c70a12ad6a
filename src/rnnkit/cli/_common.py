"""What every subcommand of ``rnnkit`` shares: the one-line error exit, the words for the
system's errors, reading a text file, and the memory at hand."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None

# exit statuses (docs/cli.md lists them)
UNUSABLE_INPUT = 2  # a flag, a file or a checkpoint that cannot be used
RUN_FAILED = 1  # the system failed the run (disk, permission, memory), or training diverged

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large (a file size limit was reached)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "it already exists",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EMFILE: "too many open files",
    errno.EIO: "an input/output error of the device",
}


def _fail(msg: str, code: int = UNUSABLE_INPUT):
    print(f"rnnkit: error: {msg}", file=sys.stderr)
    raise SystemExit(code)


def os_error(e: OSError) -> str:
    """An OSError in words, with the file it concerns: ``'runs/x/last.npz': no space left
    on the device``."""
    reason = _REASONS.get(e.errno) or e.strerror or str(e) or type(e).__name__
    name = e.filename
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return f"{str(name)!r}: {reason}" if name is not None else reason


def read_text_file(path: str, what: str = "text file") -> str:
    """The UTF-8 text of a file, or a one-line error naming it: missing, a folder, not
    readable, not UTF-8, binary or empty."""
    from ..data import read_text

    p = Path(path)
    if p.is_dir():
        _fail(f"{what} {path!r} is a folder, not a file")
    if not p.exists():
        _fail(f"{what} {path!r} does not exist")
    try:
        return read_text(p)
    except OSError as e:
        _fail(f"{what} {os_error(e)}")
    except ValueError as e:
        _fail(str(e))


def available_memory() -> int | None:
    """Bytes this process can still allocate: the system's available memory, or less
    under an address-space limit (RLIMIT_AS); None where neither can be read."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if resource else None
    if soft is not None and soft != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            used = 0
        limits.append(max(soft - used, 0))
    return min(limits) if limits else None


def gib(n: float) -> str:
    """Bytes as GiB for a message: ``12.3 GiB``."""
    return f"{n / 2**30:,.1f} GiB"
