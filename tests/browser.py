"""A headless Chromium driven through the DevTools protocol, for the tests of the HTML
report: open a page, run JavaScript in it, move the mouse, take a screenshot, and collect
the console's errors and the page's uncaught exceptions.

The protocol runs over the pipe that ``--remote-debugging-pipe`` opens (file descriptors
3 and 4 of the browser, messages of JSON ending in a NUL byte): no port, no network, no
package beyond the standard library. The browser is Debian's ``chromium`` (or Chrome) from
the PATH; :func:`find_chromium` returns None where there is none.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--hide-scrollbars", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on the PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high(fd: int) -> int:
    """fd moved to a descriptor number of at least 10 (the old one is closed)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or stopped answering."""


class Browser:
    """One headless Chromium with one page (a target attached with a flat session).

    ``with Browser() as b: b.open(url); b.eval("1 + 1")``. ``b.errors`` lists the console
    errors and uncaught exceptions seen so far, as strings.
    """

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900,
                 timeout: float = 30.0):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise FileNotFoundError("no chromium binary on the PATH")
        self.timeout = timeout
        self.size = (width, height)
        self.errors: list[str] = []
        self.events: list[dict] = []
        self._id = 0
        self._buf = b""

    # ------------------------------------------------------------------ process
    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="rnnkit-chromium-")
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()
        # the child's ends moved above 4, so that putting them on 3 and 4 never hits one
        # of them (dup2 onto itself would keep the close-on-exec flag)
        to_child_r, from_child_w = (_high(to_child_r), _high(from_child_w))

        def fds():  # the browser reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        cmd = [self.binary, *FLAGS, f"--user-data-dir={self._profile}",
               f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, preexec_fn=fds,
                                      close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1,
                   "mobile": False}, session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one command (to the page's session if ``session``) and return its result."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self._id:
                if "error" in m:
                    raise BrowserError(f"{method}: {m['error']}")
                return m.get("result", {})
            self._event(m)

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise BrowserError("the browser stopped answering")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError("the browser closed its pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _event(self, m: dict) -> None:
        self.events.append(m)
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                        for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(p["entry"].get("text", ""))

    # ------------------------------------------------------------------ the page
    def open(self, url: str, ready: str = "true") -> None:
        """Navigate to ``url`` and wait for the load event and then for the JavaScript
        expression ``ready`` to be true."""
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load in {self.timeout} s")
            self._event(self._read())
        while not self.eval(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise BrowserError(f"{ready} did not become true in {self.timeout} s")
            time.sleep(0.05)

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, session=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(d.get("exception", {}).get("description") or d.get("text"))
        return r["result"].get("value")

    def hover(self, x: float, y: float) -> None:
        """Move the mouse to the page's point (x, y) in CSS pixels."""
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y},
                  session=True)

    def click(self, x: float, y: float) -> None:
        """Click the left button at the page's point (x, y)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1},
                      session=True)

    def center(self, selector: str) -> tuple[float, float]:
        """The centre of the first element matching a CSS selector, scrolled into view."""
        r = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return r[0], r[1]

    def screenshot(self) -> bytes:
        """A PNG of the page's viewport."""
        r = self.send("Page.captureScreenshot", {"format": "png"}, session=True)
        return base64.b64decode(r["data"])


def png_pixels(data: bytes):
    """Decode an 8-bit RGB or RGBA PNG (as Chromium writes its screenshots) into a numpy
    array (height, width, channels) of uint8, with zlib and numpy only."""
    import struct
    import zlib

    import numpy as np

    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, head = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    width, height, depth, colour, _, _, interlace = head
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    rows = raw.reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.int64)
    for y in range(height):
        kind, f = rows[y, 0], rows[y, 1:].astype(np.int64)
        if kind == 0:
            cur = f
        elif kind == 1:  # sub: a running sum per channel
            cur = np.cumsum(f.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            cur = (f + prev) % 256
        else:  # average (3) and Paeth (4) depend on the pixel just decoded
            cur = f.copy()
            for x in range(width * bpp):
                a = cur[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if kind == 3:
                    cur[x] = (cur[x] + (a + b) // 2) % 256
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[x] = (cur[x] + pred) % 256
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)
