"""The subcommands that read a checkpoint written by ``rnnkit train``: ``sample`` (stream
generated text), ``eval`` (loss, bits per token, perplexity on a text) and ``info``."""

from __future__ import annotations

import math
import re
import sys

import numpy as np

from ._common import _fail, read_text_file
from .display import Stream, typed
from .run_meta import check_sample_defaults, check_summary, check_vocab

# the flags of `rnnkit sample` by the names of rnnkit.generate.check_decoding's arguments
FLAGS = {"length": "--length", "temperature": "--temperature", "top_k": "--top-k",
         "top_p": "--top-p", "greedy": "--greedy", "beam": "--beam", "stop_ids": "--stop",
         "length_penalty": "--length-penalty", "num_return": "--num"}


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
_KNOWN = r"\n, \t, \r and \\"


def _escapes(s: str | None, flag: str) -> str | None:
    """Turn the backslash escapes typed on a command line (\\n, \\t, \\r, \\\\) into
    characters; any other backslash is a one-line error naming the flag."""
    if s is None or "\\" not in s:
        return s
    parts = re.split(r"(\\.?)", s, flags=re.S)
    for i in range(1, len(parts), 2):
        key = parts[i][1:]
        if key not in _ESCAPES:
            _fail(f"{flag} {s!r} holds the escape {parts[i]!r}; the escapes are " + _KNOWN
                  + " (a backslash itself is \\\\)")
        parts[i] = _ESCAPES[key]
    return "".join(parts)


def _load(path):
    """The model, metadata, vocabulary and sampling defaults of a checkpoint written by
    ``rnnkit train``; CheckpointError (one line, the file named) for anything else."""
    from ..checkpoint import CheckpointError
    from ..models import LanguageModel, load_model

    model, meta, _ = load_model(path)
    where = repr(str(path))
    if not isinstance(model, LanguageModel) or "vocab" not in meta:
        raise CheckpointError(f"{where} is not a language-model checkpoint written by "
                              "`rnnkit train`")
    vocab = check_vocab(meta, model.vocab_size, where)
    defaults = check_sample_defaults(meta, vocab, where)
    check_summary(meta, where)
    return model, meta, vocab, defaults


def _encode(vocab, text: str, flag: str):
    try:
        return vocab.encode(text, name=flag)
    except ValueError as e:
        _fail(str(e))


def cmd_sample(args) -> int:
    """``rnnkit sample``: stream generated text from a checkpoint; returns the exit code."""
    from ..generate import check_decoding

    if args.length < 0:
        _fail(f"--length must be >= 0 (0: the run's default), got {args.length}")
    if args.num < 1:
        _fail(f"--num must be >= 1, got {args.num}")
    if args.seed < 0:
        _fail(f"--seed must be an integer >= 0, got {args.seed}")
    prime_flag, stop_flag = _escapes(args.prime, "--prime"), _escapes(args.stop, "--stop")
    model, meta, vocab, defaults = _load(args.checkpoint)
    cap = defaults["capitalize"]
    prime = typed(prime_flag, cap) if prime_flag is not None else defaults["prime"]
    stop = typed(stop_flag, cap) if stop_flag is not None else defaults["stop"]
    if not prime:
        _fail("--prime must not be empty")
    prime_ids = _encode(vocab, prime, "--prime")
    stop_ids = _encode(vocab, stop, "--stop") if stop else []
    if stop and len(stop_ids) != 1:
        _fail(f"--stop must be a single {vocab.level}, got {stop!r}")
    beams = args.beam is not None
    try:
        d = check_decoding(len(vocab), args.length or defaults["length"], args.temperature,
                           args.top_k, args.top_p, args.greedy, args.beam, stop_ids, FLAGS,
                           args.length_penalty, args.num if beams else None)
    except (TypeError, ValueError) as e:
        _fail(str(e))
    rng = np.random.default_rng(args.seed)
    outputs = model.generate(prime_ids, d.length, beam=d.beam, stop_ids=d.stop_ids,
                             length_penalty=d.length_penalty,
                             num_return=d.num_return) if beams else None
    for i in range(args.num):
        shown_prime = prime_flag is not None and not args.hide_prime
        out = Stream(vocab, cap, after="" if shown_prime else (prime_flag or ""))
        if shown_prime:
            out.text(prime_flag)  # the sample begins with the prime, as it was typed
        if beams:
            for t in outputs[i]:
                out.token(t)
        else:
            model.generate(prime_ids, d.length, rng=rng, temperature=d.temperature,
                           top_k=d.top_k, top_p=d.top_p, greedy=d.greedy,
                           stop_ids=d.stop_ids, on_token=out.token)
        out.end()
        if args.num > 1 and i < args.num - 1 and stop is None:
            sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def cmd_eval(args) -> int:
    """``rnnkit eval``: loss, bits per token and perplexity on a text; returns the exit code."""
    from ..train import StreamData, TrainConfig, Trainer

    for name in ("batch_size", "seq_len"):
        if getattr(args, name) < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    model, meta, vocab, _ = _load(args.checkpoint)
    ids = _encode(vocab, read_text_file(args.text), str(args.text))
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
    model, meta, vocab, _ = _load(args.checkpoint)
    cli = meta.get("cli", {})
    print(f"checkpoint  {args.checkpoint}")
    print(f"model       {meta['model']}: {model.rnn!r}")
    print(f"parameters  {model.num_parameters():,}")
    shown = "".join(vocab.tokens) if vocab.level == "char" else " ".join(vocab.tokens[:30])
    print(f"vocabulary  {len(vocab)} {vocab.level}s: {shown[:120]!r}")
    print(f"trained on  {meta.get('source', '?')}")
    origin = meta.get("init_from")
    if isinstance(origin, dict) and isinstance(origin.get("kept"), int):
        new = origin.get("new") if isinstance(origin.get("new"), list) else []
        print(f"fine-tuned  from {origin.get('checkpoint', '?')!s} ({origin['kept']} symbols "
              f"kept their rows, {len(new)}{'+' if len(new) >= 100 else ''} new)")
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
