"""What a ``rnnkit train`` run will need, checked before it starts: a schedule that covers
its steps, and the memory its model takes."""

from __future__ import annotations

import sys

from ..sequence import GATES
from ._common import RUN_FAILED, _fail, available_memory, gib
from .settings import TrainCommand

SLOTS = {"sgd": 1, "momentum": 1, "adagrad": 1, "rmsprop": 2, "adam": 2, "adamw": 2}


def parameter_count(cfg: TrainCommand, vocab_size: int) -> int:
    """The parameters of the language model these settings build (without building it):
    the embedding, each layer's W_x, W_h, b (GRU also b_hn), the output layer."""
    G, H, V, E = GATES[cfg.cell], cfg.hidden, vocab_size, cfg.embedding

    def layer(D: int) -> int:
        return (D + H) * G * H + G * H + (H if cfg.cell == "gru" else 0)

    return V * E + layer(E or V) + (cfg.layers - 1) * layer(H) + H * V + V


def planned_steps(cfg: TrainCommand, num_batches: int) -> int | None:
    """The step at which the run's step or epoch budget ends (None: a time budget only)."""
    ends = [n for n in (cfg.steps, cfg.epochs and cfg.epochs * num_batches) if n]
    return min(ends) if ends else None


def check_schedule(cfg: TrainCommand, num_batches: int) -> None:
    """Refuse a run whose budget goes past the end of its cosine schedule (the learning
    rate is 0 there), with the flag that fixes it; a time budget gets a note."""
    if cfg.schedule != "cosine":
        return
    end = cfg.warmup + cfg.schedule_steps
    planned = planned_steps(cfg, num_batches)
    warm = f" after --warmup {cfg.warmup}" if cfg.warmup else ""
    if planned is None:
        print(f"rnnkit: note: the cosine schedule ends at step {end} (--schedule-steps "
              f"{cfg.schedule_steps}{warm}); steps after it train at learning rate 0",
              file=sys.stderr)
    elif planned > end:
        budget = f"--steps {cfg.steps}" if planned == cfg.steps else f"--epochs {cfg.epochs}"
        _fail(f"{budget} goes past the end of the cosine schedule at step {end} "
              f"(--schedule-steps {cfg.schedule_steps}{warm}), after which the learning rate "
              f"is 0: give --schedule-steps {planned - cfg.warmup} (or more) to stretch it "
              "over the run, or a smaller budget")


def check_memory(cfg: TrainCommand, vocab_size: int) -> int:
    """Refuse (exit 1) a model whose weights, gradients and optimizer state alone need more
    memory than there is. Returns the parameter count."""
    n = parameter_count(cfg, vocab_size)
    need = n * 4 * (2 + SLOTS[cfg.optimizer])  # float32: weights, gradients, moments
    free = available_memory()
    if free is not None and need > free:
        _fail(f"out of memory: a {cfg.layers}-layer {cfg.cell.upper()} with --hidden "
              f"{cfg.hidden} has {n:,} parameters, whose weights, gradients and "
              f"{cfg.optimizer} state need {gib(need)}, more than the {gib(free)} available; "
              "lower --hidden or --layers", RUN_FAILED)
    return n
