"""The subcommands that read a checkpoint written by ``rnnkit train``: ``sample`` (stream
generated text), ``eval`` (loss, bits per token, perplexity on a text) and ``info``."""

from __future__ import annotations

import codecs
import math
import sys

import numpy as np

from ..checkpoint import CheckpointError
from ._common import _fail


def _escapes(s: str | None) -> str | None:
    """Turn backslash escapes typed on a command line (\\n, \\t) into characters."""
    if s is None:
        return None
    return codecs.decode(s.encode("utf-8"), "unicode_escape") if "\\" in s else s


def _load(path):
    from ..data import Vocab
    from ..models import LanguageModel, load_model

    try:
        model, meta, _ = load_model(path)
    except CheckpointError as e:
        _fail(str(e))
    if not isinstance(model, LanguageModel) or "vocab" not in meta:
        _fail(f"{path!r} is not a language-model checkpoint written by `rnnkit train`")
    return model, meta, Vocab.from_json(meta["vocab"])


def cmd_sample(args) -> int:
    """``rnnkit sample``: stream generated text from a checkpoint; returns the exit code."""
    if args.length < 0:
        _fail(f"--length must be >= 0 (0: the run's default), got {args.length}")
    if args.num < 1:
        _fail(f"--num must be >= 1, got {args.num}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        _fail(f"--temperature must be a finite number > 0 (use --greedy for 0), "
              f"got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        _fail(f"--top-k must be >= 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        _fail(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.beam is not None and args.beam < 1:
        _fail(f"--beam must be >= 1, got {args.beam}")
    model, meta, vocab = _load(args.checkpoint)
    defaults = meta.get("sample_defaults", {})
    prime = _escapes(args.prime) if args.prime is not None else defaults.get("prime")
    stop = _escapes(args.stop) if args.stop is not None else defaults.get("stop")
    length = args.length or defaults.get("length", 300)
    if not prime:
        _fail("--prime must not be empty")
    try:
        prime_ids = vocab.encode(prime, name="--prime")
    except ValueError as e:
        _fail(str(e))
    stop_ids = []
    if stop:
        try:
            stop_ids = vocab.encode(stop, name="--stop")
        except ValueError as e:
            _fail(str(e))
        if len(stop_ids) != 1:
            _fail(f"--stop must be a single {vocab.level}, got {stop!r}")
    rng = np.random.default_rng(args.seed)
    sep = "" if vocab.level == "char" else " "
    for i in range(args.num):
        # words are joined by spaces, as Vocab.decode does: none at the start of a line
        # nor before a newline
        line_start = [True]
        first = [defaults.get("capitalize", False) and not args.show_prime]
        if args.show_prime:
            sys.stdout.write(prime)
            line_start[0] = prime[-1].isspace()

        def emit(tok, line_start=line_start, first=first):
            t = vocab.tokens[tok]
            if first[0]:  # the first letter of a name
                t = t.upper()
            first[0] = False
            sys.stdout.write(t if not sep or line_start[0] or t == "\n" else sep + t)
            sys.stdout.flush()
            line_start[0] = t == "\n"

        toks = model.generate(prime_ids, length, rng=rng, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, greedy=args.greedy,
                              beam=args.beam, stop_ids=stop_ids, on_token=emit)
        if not toks or vocab.tokens[toks[-1]] != "\n":
            sys.stdout.write("\n")
        if args.num > 1 and i < args.num - 1 and stop is None:
            sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def cmd_eval(args) -> int:
    """``rnnkit eval``: loss, bits per token and perplexity on a text; returns the exit code."""
    from ..data import read_text
    from ..train import StreamData, TrainConfig, Trainer

    for name in ("batch_size", "seq_len"):
        if getattr(args, name) < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    model, meta, vocab = _load(args.checkpoint)
    try:
        text = read_text(args.text)
        ids = vocab.encode(text, name=str(args.text))
    except (OSError, ValueError) as e:
        _fail(str(e))
    if len(ids) < 2:
        _fail(f"{str(args.text)!r} holds {len(ids)} token(s): at least 2 are needed to "
              "predict one")
    data = StreamData(ids, min(args.batch_size, max(1, (len(ids) - 1) // 2)), args.seq_len)
    from ..optim import SGD

    trainer = Trainer(model, SGD(model.params, lr=1.0), data, None, TrainConfig(steps=0),
                      log=lambda m: None)
    ev = trainer.evaluate(data)
    unit = "word" if vocab.level == "word" else "char"
    print(f"{args.text}: {len(ids):,} {unit}s")
    print(f"loss        {ev['loss']:.4f} nats/{unit}")
    print(f"bits/{unit}   {ev['bpc']:.4f}")
    print(f"perplexity  {ev['perplexity']:.3f}")
    return 0


def cmd_info(args) -> int:
    """``rnnkit info``: describe a checkpoint; returns the exit code."""
    model, meta, vocab = _load(args.checkpoint)
    cli = meta.get("cli", {})
    print(f"checkpoint  {args.checkpoint}")
    print(f"model       {meta['model']}: {model.rnn!r}")
    print(f"parameters  {model.num_parameters():,}")
    shown = "".join(vocab.tokens) if vocab.level == "char" else " ".join(vocab.tokens[:30])
    print(f"vocabulary  {len(vocab)} {vocab.level}s: {shown[:120]!r}")
    print(f"trained on  {meta.get('source', '?')}")
    for k in ("cell", "layers", "hidden", "embedding", "init", "dropout", "seq_len", "batch_size",
              "optimizer", "lr", "schedule", "clip", "clip_value", "seed"):
        if k in cli:
            print(f"  {k:<12}{cli[k]}")
    ts = meta.get("train_state")
    if ts:
        hist = ts.get("history", [])
        vals = [h["val_loss"] for h in hist if h.get("val_loss") is not None]
        print(f"trained     {ts['step']} steps, {ts['epoch']} epochs")
        if hist:
            print(f"last loss   {hist[-1].get('loss', float('nan')):.4f}")
        if vals:
            print(f"val loss    last {vals[-1]:.4f}, best {min(vals):.4f} "
                  f"({min(vals) / math.log(2):.3f} bits/{vocab.level})")
    return 0
