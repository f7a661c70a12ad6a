"""Fine-tuning against training from scratch, on the same text at the same budget.

Trains two runs of ``rnnkit train`` on TEXT (default: the built-in dinosaur names): one
``--init-from CHECKPOINT`` (the checkpoint's model shape and weights, a fresh optimizer), one
from scratch with the same shape and every other setting equal. Prints the validation loss
of both every ``--eval-every`` steps and the first step at which each reaches each loss of
``--targets``:

    rnnkit train ../shared/data/tinyshakespeare.txt --hidden 256 --seq-len 100 \
        --out runs/shakespeare
    python examples/finetune_compare.py runs/shakespeare/best.npz --out runs/ft

The runs are written to OUT/finetuned and OUT/scratch (their history.csv holds every
number).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnkit.checkpoint import read_meta
from rnnkit.cli import main


def _val(history: list) -> dict:
    """step -> validation loss of a run's history."""
    return {h["step"]: h["val_loss"] for h in history if h.get("val_loss") is not None}


def _first(val: dict, target: float):
    """The first step whose validation loss is at most ``target``, or None."""
    return next((s for s, v in sorted(val.items()) if v <= target), None)


def main_(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a language model checkpoint written by rnnkit train")
    p.add_argument("text", nargs="?", help="UTF-8 text to fine-tune on (default: the "
                   "built-in dinosaur names)")
    p.add_argument("--steps", type=int, default=300, help="steps of each run")
    p.add_argument("--eval-every", type=int, default=25, help="steps between validations")
    p.add_argument("--targets", default="2.6,2.4,2.2,2.1",
                   help="comma-separated validation losses to report the first step of")
    p.add_argument("--out", default="runs/finetune", help="folder of the two runs")
    p.add_argument("--seed", type=int, default=0, help="seed of both runs")
    args = p.parse_args(argv)
    cli = read_meta(args.checkpoint)[0].get("cli") or {}
    shape = ["--cell", cli.get("cell", "lstm"), "--layers", str(cli.get("layers", 2)),
             "--hidden", str(cli.get("hidden", 128)), "--embedding", str(cli.get("embedding", 0)),
             "--dropout", str(cli.get("dropout", 0.2)), "--init", cli.get("init", "default")]
    common = ([args.text] if args.text else []) + [
        "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--sample-every", "0",
        "--seed", str(args.seed), "--quiet"]
    out = Path(args.out)
    runs = {"finetuned": ["--init-from", args.checkpoint], "scratch": shape}
    vals = {}
    for name, flags in runs.items():
        code = main(["train", *common, *flags, "--out", str(out / name)])
        if code:
            raise SystemExit(code)
        vals[name] = _val(json.loads((out / name / "history.json").read_text()))
    targets = [float(t) for t in args.targets.split(",")]
    print(f"validation loss (nats per character), {args.steps} steps each:")
    print(f"{'step':>6} {'fine-tuned':>11} {'scratch':>9}")
    for s in sorted(vals["scratch"]):
        if s % (4 * args.eval_every) == 0 or s == args.eval_every:
            print(f"{s:>6} {vals['finetuned'].get(s, float('nan')):>11.4f} "
                  f"{vals['scratch'][s]:>9.4f}")
    print(f"{'target':>6} {'fine-tuned':>11} {'scratch':>9}   (first step at or below it)")
    for t in targets:
        a, b = _first(vals["finetuned"], t), _first(vals["scratch"], t)
        print(f"{t:>6.2f} {a if a else '-':>11} {b if b else '-':>9}")


if __name__ == "__main__":
    main_()
