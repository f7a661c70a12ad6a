"""The ``rnnkit`` command: train a character (or word) language model, sample, evaluate, inspect.

    rnnkit train [TEXT_FILE]        # no file: the built-in dinosaur names
    rnnkit sample CHECKPOINT
    rnnkit eval CHECKPOINT TEXT_FILE
    rnnkit info CHECKPOINT
    rnnkit export CHECKPOINT -o model.onnx
    rnnkit inspect CHECKPOINT [TEXT_FILE]
    rnnkit viz CHECKPOINT TEXT_FILE -o report.html

Every ``train`` flag maps one-to-one onto a field of :class:`TrainCommand`.

Here: the parser and :func:`main` (the console script ``rnnkit``). The subcommands live in
``settings`` (:class:`TrainCommand`, its checks, what ``--resume`` keeps), ``train`` and
``checkpoint_commands`` (``sample``, ``eval``, ``info``), ``export``, and
``inspect_commands`` (``inspect``, ``viz``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from .. import __version__
from ..checkpoint import CheckpointError
from ._common import RUN_FAILED, UNUSABLE_INPUT, os_error
from .checkpoint_commands import cmd_eval, cmd_info, cmd_sample
from .export import add_export_parser, cmd_export
from .inspect_commands import add_inspect_parsers, cmd_inspect, cmd_viz
from .settings import NOT_INHERITED, RESUME_FIXED, TrainCommand
from .train import BUILTIN, cmd_train

__all__ = [
    "BUILTIN",
    "NOT_INHERITED",
    "RESUME_FIXED",
    "TrainCommand",
    "build_parser",
    "cmd_eval",
    "cmd_export",
    "cmd_info",
    "cmd_inspect",
    "cmd_sample",
    "cmd_train",
    "cmd_viz",
    "main",
]


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line, as every other error of rnnkit."""

    def error(self, message: str):
        self.exit(2, f"rnnkit: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``rnnkit`` command and its subcommands."""
    p = _Parser(prog="rnnkit", description="Recurrent networks on numpy: train "
                                "a character-level language model, then sample from it.")
    p.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a language model on a text file",
                       description="Train a character (or word) level language model. With no "
                       "TEXT_FILE, trains on the built-in list of dinosaur names.")
    for f in fields(TrainCommand):
        meta = f.metadata
        default = "" if f.default is None else f" (default: {f.default})"
        kw = {"help": meta["help"] + ("" if f.type == "bool" else default),
              "default": argparse.SUPPRESS}  # absent unless given: --resume fills it in
        if f.name == "text":
            t.add_argument("text", nargs="?", metavar="TEXT_FILE", **kw)
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            t.add_argument(flag, action="store_true", **kw)
        elif "choices" in meta:
            t.add_argument(flag, choices=meta["choices"], **kw)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type.split(" ")[0]]
            t.add_argument(flag, type=kind, **kw)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Generate text from a trained checkpoint, streaming it as it "
                       "is generated. Backslash escapes such as \\n work in --prime and --stop.")
    s.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    s.add_argument("--prime", help="text to start from (default: the run's, e.g. a newline)")
    s.add_argument("--length", type=int, default=0,
                   help="tokens to generate per sample (default: the run's, e.g. 50)")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="softmax temperature: <1 more conservative, >1 more varied")
    s.add_argument("--top-k", type=int, help="sample only among the k most likely tokens")
    s.add_argument("--top-p", type=float, help="nucleus sampling: smallest set of mass p")
    s.add_argument("--greedy", action="store_true", help="always take the most likely token")
    s.add_argument("--beam", type=int, help="beam search of this width (deterministic); "
                   "with --num N (<= the width), the N best distinct beams")
    s.add_argument("--length-penalty", type=float,
                   help="beam search: rank by the sum of log-probabilities / length**A "
                   "(default: 1, the mean per token; 0: the sum, which favours short and "
                   "empty outputs)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--stop", help="stop after this token (default: the run's, e.g. newline)")
    s.add_argument("--num", type=int, default=1,
                   help="number of samples, or with --beam of best beams (default: 1)")
    s.add_argument("--hide-prime", action="store_true",
                   help="print only the generated text, not the --prime it continues")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="loss, bits per char and perplexity on a text",
                       description="Evaluate a checkpoint on a held-out text file.")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    e.add_argument("text", metavar="TEXT_FILE", help="UTF-8 text to evaluate on")
    e.add_argument("--batch-size", type=int, default=32, help="streams evaluated side by side")
    e.add_argument("--seq-len", type=int, default=100, help="steps per chunk (state is carried)")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="configuration, size, vocabulary and history of a checkpoint",
                       description="Describe a checkpoint.")
    i.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    i.set_defaults(func=cmd_info)
    add_export_parser(sub)
    add_inspect_parsers(sub)
    return p


def main(argv=None) -> int:
    """Entry point of the ``rnnkit`` console script; returns the exit code.

    Every failure a user or the system causes ends here as one line on stderr and an exit
    status (docs/cli.md): a checkpoint that cannot be used (2), a file the system cannot
    write or read, memory it cannot give (1); the subcommands' own checks print their line
    and exit the same way. Subcommands added later get this for free."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # a checkpoint being written is never left half-done (it is written to a temporary
        # file and renamed), so stopping anywhere is safe
        print("\nrnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `rnnkit sample ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except CheckpointError as e:
        return _error(str(e), UNUSABLE_INPUT)
    except MemoryError as e:
        return _error(f"out of memory{f' ({e})' if str(e) else ''}", RUN_FAILED)
    except OSError as e:
        return _error(os_error(e), RUN_FAILED)


def _error(msg: str, code: int) -> int:
    sys.stdout.flush()
    print(f"rnnkit: error: {' '.join(msg.split())}", file=sys.stderr)
    return code
