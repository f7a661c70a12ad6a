"""What every subcommand of ``rnnkit`` shares: the one-line error exit."""

from __future__ import annotations

import sys


def _fail(msg: str, code: int = 2):
    print(f"rnnkit: error: {msg}", file=sys.stderr)
    raise SystemExit(code)
