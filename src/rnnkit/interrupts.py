"""Signals that stop a training run at a step boundary, never inside an update.

While :meth:`rnnkit.train.Trainer.fit` runs in the main thread, a :class:`StepBoundary`
handles Ctrl-C (SIGINT) and SIGTERM where Python's own handling is in place (SIGINT not
ignored, SIGTERM not handled by anyone else):

* the first signal asks the run to stop after the step under way (its checkpoint is then
  that of a step boundary, and a resume continues exactly);
* a second one stops at once: a step still computing its gradients is rolled back (its
  only side effect, the random draws of dropout, is undone by the trainer), and a step
  applying its update (the :meth:`StepBoundary.update` block: the optimizer, the counters,
  the history) is finished first. Either way the state left is that of a step boundary.

If an exception escapes from inside an update anyway (a KeyboardInterrupt raised by a
handler of the caller's, an error in the optimizer), :attr:`StepBoundary.torn` is set: the
weights are then half-updated and must not be saved.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StepBoundary:
    """Defers SIGINT and SIGTERM to step boundaries while it is entered (``with``).

    ``requested``: None, or the name of the first signal ("Ctrl-C", "SIGTERM");
    ``torn``: an exception left an update unfinished. Outside the main thread, or where
    another handler is installed, nothing is changed and only ``update`` applies.
    """

    def __init__(self):
        self.requested: str | None = None
        self.torn = False
        self._critical = 0  # depth of nested update blocks
        self._pending = False
        self._old: dict = {}

    def __enter__(self) -> StepBoundary:
        if threading.current_thread() is not threading.main_thread():
            return self
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for sig, default in defaults.items():
            if signal.getsignal(sig) is default:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        return False

    def _handler(self, signum, frame) -> None:
        name = _NAMES.get(signum, f"signal {signum}")
        if self.requested is None:
            self.requested = name
            msg = f"\nrnnkit: stopping after this step ({name} again to stop at once)\n"
            try:  # not print(): the interrupted code may be writing to sys.stderr right now
                os.write(sys.stderr.fileno(), msg.encode())
            except (AttributeError, OSError, ValueError):
                pass
            return
        if self._critical:
            self._pending = True  # raised once the update is complete
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def update(self):
        """The block that changes the run's state (weights, optimizer, counters): a second
        signal waits for its end; an exception escaping from it sets ``torn``."""
        self._critical += 1
        try:
            yield
        except BaseException:
            self.torn = True
            raise
        finally:
            self._critical -= 1
        if self._pending and not self._critical:
            self._pending = False
            raise KeyboardInterrupt
