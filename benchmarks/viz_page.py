"""How long `rnnkit viz` takes and how fast its page opens, on a real checkpoint and text.

    python benchmarks/viz_page.py CHECKPOINT TEXT_FILE [--length 20000]

Runs the command (its wall time, the page's size), then opens the page in headless Chromium
(tests/browser.py) and reports the time from navigation to the page being ready, the
page's own decoding and first-render times, and the time to switch the shown unit (the
mean of 20 switches). Numbers for docs/inspect.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import Browser  # noqa: E402

READY = "window.rnnkitReport && window.rnnkitReport.ready"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a .npz written by rnnkit train")
    p.add_argument("text", help="UTF-8 text")
    p.add_argument("--length", type=int, default=20_000, help="characters (default: 20000)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        page = Path(d) / "report.html"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rnnkit.cli", "viz", args.checkpoint, args.text,
                        "-o", str(page), "--length", str(args.length)], check=True,
                       stdout=subprocess.DEVNULL)
        command = time.perf_counter() - t0
        size = page.stat().st_size / 1e6
        with Browser(timeout=120) as b:
            t0 = time.perf_counter()
            b.open(page.as_uri(), ready=READY)
            opened = time.perf_counter() - t0
            decode, render = b.eval("[rnnkitReport.decodeMs, rnnkitReport.renderMs]")
            switch = b.eval("(() => { const t = performance.now(), n = rnnkitReport.hidden;"
                            "for (let u = 0; u < 20; u++) rnnkitReport.select(0, u % n);"
                            "return (performance.now() - t) / 20; })()")
            errors = b.errors
    print(f"rnnkit viz, {args.length:,} characters: {command:.1f} s, a page of {size:.1f} MB")
    print(f"page opened and ready in {opened:.2f} s (its script: data decoded in "
          f"{decode:.0f} ms, text coloured in {render:.0f} ms); another unit shown in "
          f"{switch:.0f} ms; console errors: {len(errors)}")


if __name__ == "__main__":
    main()
