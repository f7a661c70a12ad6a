"""How ``rnnkit`` shows samples, and reads back what a user types.

A sample is shown as it is: an empty one as an empty line, a prime given with ``--prime``
as the start of its text. A run may ask for names to be shown capitalised (the built-in
dinosaur names: ``sample_defaults.capitalize``); then the first letter of every line is
upper-cased for display, and what a user types (``--prime``, ``--stop``) is lower-cased
before it is encoded, so that whatever is shown can be typed back.
"""

from __future__ import annotations

import sys


def shown(text: str, capitalize: bool) -> str:
    """A generated text as displayed: with ``capitalize``, the first letter of every line
    upper-cased."""
    if not capitalize:
        return text
    return "\n".join(line[:1].upper() + line[1:] for line in text.split("\n"))


def typed(text: str, capitalize: bool) -> str:
    """What a user typed, as the run's vocabulary holds it: the inverse of :func:`shown`
    (lower-cased when the run capitalises its names)."""
    return text.lower() if capitalize else text


class Stream:
    """Writes a sample to stdout as it is generated: tokens joined as ``Vocab.decode``
    joins them (words by single spaces, none at the start of a line nor before a newline),
    shown as :func:`shown` shows them."""

    def __init__(self, vocab, capitalize: bool, out=None, after: str = ""):
        """``after``: a text the sample continues without showing it (a hidden prime): what
        follows it is not the start of a name."""
        self.vocab, self.capitalize = vocab, capitalize
        self.out = out or sys.stdout
        self.sep = "" if vocab.level == "char" else " "
        self.line_start = True  # no separator before the next word
        self.name_start = not after or after.endswith("\n")  # capitalised, if names are
        self.last = ""

    def text(self, text: str) -> None:
        """Write a typed text (the prime) as the start of the sample."""
        if text:
            self._write(shown(text, self.capitalize))
            self.name_start = text.endswith("\n")
            self.line_start = self.name_start or (bool(self.sep) and text[-1].isspace())

    def token(self, tok: int) -> None:
        """Write one generated token id."""
        t = self.vocab.tokens[tok]
        if self.capitalize and self.name_start:
            t = t[:1].upper() + t[1:]
        self._write(t if not self.sep or self.line_start or t == "\n" else self.sep + t)
        self.line_start = self.name_start = t == "\n"

    def end(self) -> None:
        """Close the sample's line."""
        if not self.last.endswith("\n"):
            self._write("\n")
        self.line_start = True

    def _write(self, s: str) -> None:
        self.out.write(s)
        self.out.flush()
        self.last = s
