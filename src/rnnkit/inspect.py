"""Look inside a model: how the gradient flows back through time.

The seeds' story of the vanishing gradient, measured: :func:`gradient_flow` runs a
model's forward and backward on a batch and keeps, for every layer and direction, the
gradient of the loss with respect to each step's state, ``dL/dh_t``. Its size as a
function of the distance between step t and the loss shows whether the gradient that
reaches far-away steps shrinks (plain RNNs) or is carried (LSTM, GRU).

Two losses:

* ``"last"``: the loss of the last step only, ``L = mean_b L_b<T>`` (for a language model,
  the cross-entropy of its last prediction; for a many-to-one model, its loss). The
  distance of step t is then the number of steps between t and the end, T - 1 - t (the
  reverse direction of a bidirectional layer runs the other way: distance t).
* ``"sum"``: the seeds' ``L = sum_t L<t>``, each step's loss a mean over the batch
  (language models only; a many-to-one model has a loss at its last step only). Every
  step then gets gradient from the losses at and after it.

Letters: B batch, T steps, H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import softmax_cross_entropy
from .models import LanguageModel, SequenceClassifier

LOSSES = ("last", "sum")


@dataclass
class GradientFlow:
    """The result of :func:`gradient_flow`.

    loss: ``"last"`` or ``"sum"``; grads: ``{(layer, "forward" | "reverse"): dL/dh (T, B,
    H)}`` in time order; norms: the same keys, ``(T,)`` the mean over the batch of each
    example's Euclidean norm of dL/dh_t.
    """

    loss: str
    grads: dict
    norms: dict

    @property
    def steps(self) -> int:
        """T."""
        return next(iter(self.norms.values())).shape[0]

    def by_distance(self, key) -> tuple[np.ndarray, np.ndarray]:
        """(distances (T,) = 0, 1, ..., T-1; norms (T,) at those distances) of one layer
        and direction: distance d is the step d steps before the end of that direction's
        pass (forward: t = T - 1 - d; reverse: t = d)."""
        n = self.norms[key]
        return np.arange(n.shape[0]), (n[::-1] if key[1] == "forward" else n)

    def table(self, every: int = 1) -> str:
        """A text table: one row per distance (every ``every``-th), one column per layer and
        direction, the norm of dL/dh at that distance."""
        keys = sorted(self.norms)
        names = [f"layer {k} {d}" for k, d in keys]
        width = max(12, *(len(n) + 2 for n in names))
        lines = [f"{'distance':>8}" + "".join(f"{n:>{width}}" for n in names)]
        cols = [self.by_distance(k)[1] for k in keys]
        for d in range(0, self.steps, max(1, int(every))):
            lines.append(f"{d:>8}" + "".join(f"{c[d]:>{width}.4g}" for c in cols))
        return "\n".join(lines)


def gradient_flow(model, batch: dict, loss: str = "last") -> GradientFlow:
    """dL/dh_t of every step, layer and direction of a model on one batch.

    model: a :class:`~rnnkit.models.LanguageModel` (batch ``{"x": ids (B, T), "y": next ids
    (B, T)}``) or a many-to-one :class:`~rnnkit.models.SequenceClassifier` /
    ``SequenceRegressor`` (its own batch: ``x``, ``y``, optional ``mask``); loss
    ``"last"`` or ``"sum"`` (see the module text). The model is run in eval mode (no
    dropout) and left in the mode it was in; its parameters are not changed.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not isinstance(model, (LanguageModel, SequenceClassifier)):
        raise TypeError(f"model must be a LanguageModel, SequenceClassifier or "
                        f"SequenceRegressor, got {type(model).__name__}")
    if isinstance(model, SequenceClassifier) and loss != "last":
        raise ValueError(f"a {type(model).__name__} has a loss at the last step only: use "
                         f"loss='last', got {loss!r}")
    was_training = model.rnn.training
    model.eval()
    grads: dict = {}
    rnn_backward = model.rnn.backward
    model.rnn.backward = lambda *a, **k: rnn_backward(*a, dh_steps=grads, **k)
    try:
        if isinstance(model, LanguageModel):
            _language_model_backward(model, batch, loss)
        else:
            model.train_batch(batch)
    finally:
        del model.rnn.backward  # back to the method
        if was_training:
            model.train()
    if not grads:
        raise ValueError("the loss is not finite on this batch: no gradient to follow")
    norms = {k: np.linalg.norm(g, axis=2).mean(axis=1) for k, g in grads.items()}
    return GradientFlow(loss, grads, norms)


def _language_model_backward(model: LanguageModel, batch: dict, loss: str) -> None:
    """The language model's backward for the loss "last" or "sum" (a mean over the batch
    at each step counted)."""
    logits, _, cache = model._forward_tm(batch["x"], None, None, batch.get("cond"))
    y, _ = model._targets(batch)
    B, T = np.shape(batch["x"])
    counted = np.ones(T * B, dtype=bool)
    if loss == "last":
        counted[: (T - 1) * B] = False  # time-major positions: the last B are step T-1
    total, dzT = softmax_cross_entropy(logits, y, counted, "sum", check_finite=False, axis=0)
    if np.isfinite(total):
        model._backward_tm(dzT / B, cache)


def flow_table(flows: dict, every: int = 1) -> str:
    """Several :class:`GradientFlow` of one model side by side, as text: one row per
    distance (every ``every``-th, and the last), for each layer and direction one column per
    loss, the norm of dL/dh at that distance.

    flows: ``{loss: GradientFlow}``, e.g. ``{"last": ..., "sum": ...}``, all of T steps and
    the same layers. The first line names the layers, the second the losses under the word
    ``distance``."""
    losses = list(flows)
    first = flows[losses[0]]
    keys = sorted(first.norms)
    names = [f"layer {k} {d}" for k, d in keys]
    col = max(11, *(len(loss) + 2 for loss in losses))
    group = max(col * len(losses), *(len(n) + 2 for n in names))
    col = group // len(losses)
    group = col * len(losses)
    lines = [" " * 8 + "".join(f"{n:>{group}}" for n in names),
             f"{'distance':>8}" + "".join(f"{loss:>{col}}" for _ in keys for loss in losses)]
    cols = [[flows[loss].by_distance(k)[1] for loss in losses] for k in keys]
    T = first.steps
    rows = sorted(set(range(0, T, max(1, int(every)))) | {T - 1})
    for d in rows:
        lines.append(f"{d:>8}" + "".join(f"{c[d]:>{col}.4g}" for cs in cols for c in cs))
    return "\n".join(lines)


def plot_flows(flows: dict, path, title: str = "") -> None:
    """Draw the norm of dL/dh (log scale) against the distance to the loss, one panel per
    loss of ``flows`` (``{loss: GradientFlow}``), one line per layer and direction, and
    save a PNG at ``path``. Needs matplotlib (ImportError with the command to install it)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the plot needs matplotlib, which is not installed: "
                          "pip install 'rnnkit[plot]'") from None
    fig = Figure(figsize=(4.2 * len(flows), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(flows), squeeze=False)[0]
    what = {"last": "loss of the last step", "sum": "sum of the losses of all steps"}
    for ax, (loss, flow) in zip(axes, flows.items(), strict=True):
        for key in sorted(flow.norms):
            d, n = flow.by_distance(key)
            ok = n > 0  # a zero norm has no place on a log scale
            ax.semilogy(d[ok], n[ok], label=f"layer {key[0]} {key[1]}")
        ax.set_xlabel("distance to the end (steps)")
        ax.set_ylabel("mean |dL/dh_t|")
        ax.set_title(what.get(loss, loss), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
