"""Dinosaurus Island: the course's character-level language model, written as its code.

"Dinosaurus Island - Character level language model": an RNN reads a dinosaur name one
character at a time and predicts the next one; :func:`model` trains it with
:func:`optimize` (forward, backward through time, :func:`clip`, SGD) one name per
iteration and prints names drawn by :func:`sample`. The forward and backward steps are
those of the notebook's ``utils.py`` (``rnn_step_forward``, ``rnn_step_backward``, ...),
line by line and with its ``np.dot``: the same numbers, bit for bit, as the course's code
(and its outer products ``np.dot(dy, a.T)`` are faster in numpy than ``dy @ a.T``).

Column layout, one character per step, one-hot column vectors::

    x<t> (vocab_size, 1)   a<t> (n_a, 1)   y_hat<t> (vocab_size, 1)
    Wax (n_a, vocab_size)   Waa (n_a, n_a)   Wya (vocab_size, n_a)   b (n_a, 1)
    by (vocab_size, 1)

**Randomness.** :func:`sample` and :func:`model` seed numpy's *global* random state
(``np.random.seed``), because that is how the course makes its printed output
reproducible; with it they print the course's published names. This is a deliberate,
documented exception confined to this module: the rest of rnnkit takes a
``np.random.Generator`` or a seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import numpy as np

from ._validate import check, get_params
from .rnn_utils import softmax

GRADIENTS = ("dWaa", "dWax", "dWya", "db", "dby")


def clip(gradients, maxValue):
    """Clip every gradient element-wise to [-maxValue, maxValue], in place (as the course).

    Args:
        gradients: dict with ``dWaa, dWax, dWya, db, dby`` (float arrays of any shape);
            the arrays themselves are clipped (``np.clip(..., out=...)``).
        maxValue: positive number.
    Returns:
        a new dict holding exactly those five (clipped) arrays; other keys are dropped.
    """
    if isinstance(maxValue, bool) or not isinstance(maxValue, (int, float, np.floating,
                                                                 np.integer)):
        raise TypeError(f"maxValue must be a positive number, got {maxValue!r}")
    if not maxValue > 0:
        raise ValueError(f"maxValue must be a positive number, got {maxValue}")
    dWaa, dWax, dWya, db, dby = get_params(gradients, GRADIENTS, "clip")
    for name, gradient in zip(GRADIENTS, (dWaa, dWax, dWya, db, dby), strict=True):
        if not isinstance(gradient, np.ndarray) or gradient.dtype.kind != "f":
            raise TypeError(f"gradients['{name}'] must be a float numpy array, got "
                            f"{getattr(gradient, 'dtype', type(gradient).__name__)}")
        np.clip(gradient, -maxValue, maxValue, out=gradient)
    return {"dWaa": dWaa, "dWax": dWax, "dWya": dWya, "db": db, "dby": dby}


# ------------------------------------------------------------------- the course's utils
def _step_forward(parameters, a_prev, x):
    """``utils.rnn_step_forward``: a_prev (n_a, 1), x (vocab_size, 1) -> a_next, p_t."""
    Waa, Wax, Wya, by, b = (parameters[k] for k in ("Waa", "Wax", "Wya", "by", "b"))
    a_next = np.tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)
    p_t = softmax(np.dot(Wya, a_next) + by)
    return a_next, p_t


def _step_backward(dy, gradients, parameters, x, a, a_prev):
    """``utils.rnn_step_backward``: add step t's share to ``gradients``, in place.

    dy (vocab_size, 1) is the gradient w.r.t. the step's logits ``Wya a + by``;
    ``gradients['da_next']`` (n_a, 1) is what step t+1 sent back to ``a``. Then::

        da    = Wya^T dy + da_next
        daraw = (1 - a * a) * da                 backprop through tanh
        dWya += dy a^T,  dby += dy,  db += daraw,  dWax += daraw x^T,  dWaa += daraw a_prev^T
        da_next = Waa^T daraw                    for step t-1
    """
    gradients["dWya"] += np.dot(dy, a.T)
    gradients["dby"] += dy
    da = np.dot(parameters["Wya"].T, dy) + gradients["da_next"]
    daraw = (1 - a * a) * da
    gradients["db"] += daraw
    gradients["dWax"] += np.dot(daraw, x.T)
    gradients["dWaa"] += np.dot(daraw, a_prev.T)
    gradients["da_next"] = np.dot(parameters["Waa"].T, daraw)
    return gradients


def _forward(X, Y, a0, parameters, vocab_size):
    """``utils.rnn_forward``: the loss ``L = sum_t -log y_hat<t>[Y[t]]`` and the cache.

    x[t] is the one-hot of X[t] (zeros for ``None``); a[-1] = a0 is the state before the
    first step. Returns loss and cache = (y_hat, a, x), dicts keyed by t.
    """
    x, a, y_hat = {}, {}, {}
    a[-1] = np.copy(a0)
    loss = 0.0
    for t in range(len(X)):
        x[t] = np.zeros((vocab_size, 1))
        if X[t] is not None:
            x[t][X[t]] = 1
        a[t], y_hat[t] = _step_forward(parameters, a[t - 1], x[t])
        loss -= np.log(y_hat[t][Y[t], 0])
    return float(loss), (y_hat, a, x)


def _backward(X, Y, parameters, cache):
    """``utils.rnn_backward``: the gradients of the loss, t = T-1, ..., 0; and a.

    At each step the gradient w.r.t. the logits is ``dy = y_hat<t> - onehot(Y[t])``
    (softmax with cross-entropy).
    """
    y_hat, a, x = cache
    gradients = {"d" + k: np.zeros_like(parameters[k]) for k in ("Wax", "Waa", "Wya", "b",
                                                                 "by")}
    gradients["da_next"] = np.zeros_like(a[0])
    for t in reversed(range(len(X))):
        dy = np.copy(y_hat[t])
        dy[Y[t]] -= 1
        gradients = _step_backward(dy, gradients, parameters, x[t], a[t], a[t - 1])
    return gradients, a


def _update_parameters(parameters, gradients, lr):
    """``utils.update_parameters``: ``W += -lr * dW`` for every parameter, in place."""
    for k in ("Wax", "Waa", "Wya", "b", "by"):
        parameters[k] += -lr * gradients["d" + k]
    return parameters


def _optimize(X, Y, a_prev, parameters, learning_rate):
    """The body of :func:`optimize` (its arguments already checked)."""
    loss, cache = _forward(X, Y, a_prev, parameters, parameters["by"].shape[0])
    gradients, a = _backward(X, Y, parameters, cache)
    gradients = clip(gradients, 5)
    parameters = _update_parameters(parameters, gradients, learning_rate)
    return loss, gradients, a[len(X) - 1]


# ------------------------------------------------------------------- checks
def _check_parameters(parameters, fname):
    """Checked parameters Wax (n_a, V), Waa, Wya (V, n_a), b (n_a, 1), by (V, 1); n_a, V."""
    got = get_params(parameters, ("Wax", "Waa", "Wya", "b", "by"), fname)
    dt = np.float64
    Wax = check(got[0], "parameters['Wax']", (("n_a", None), ("vocab_size", None)), dt)
    n_a, V = Wax.shape
    p = {"Wax": Wax,
         "Waa": check(got[1], "parameters['Waa']", (("n_a", n_a), ("n_a", n_a)), dt),
         "Wya": check(got[2], "parameters['Wya']", (("vocab_size", V), ("n_a", n_a)), dt),
         "b": check(got[3], "parameters['b']", (("n_a", n_a), ("1", 1)), dt),
         "by": check(got[4], "parameters['by']", (("vocab_size", V), ("1", 1)), dt)}
    return p, n_a, V


def _check_newline(char_to_ix, V) -> int:
    if not isinstance(char_to_ix, Mapping) or "\n" not in char_to_ix:
        raise ValueError("char_to_ix must be a dict mapping characters to indices that "
                         "includes the newline '\\n'")
    nl = char_to_ix["\n"]
    if isinstance(nl, bool) or not isinstance(nl, (int, np.integer)) or not 0 <= nl < V:
        raise ValueError(f"char_to_ix['\\n'] must be an index in [0, {V}), got {nl!r}")
    return int(nl)


def _check_sequences(X, Y, V) -> None:
    if not isinstance(X, (list, tuple)) or not isinstance(Y, (list, tuple)):
        raise TypeError(f"X and Y must be lists of indices, got {type(X).__name__} and "
                        f"{type(Y).__name__}")
    if len(X) != len(Y) or not X:
        raise ValueError(f"X and Y must be non-empty and of the same length, got {len(X)} "
                         f"and {len(Y)}")
    for name, seq, none_ok in (("X", X, True), ("Y", Y, False)):
        for t, ix in enumerate(seq):
            if ix is None and none_ok:
                continue
            if isinstance(ix, bool) or not isinstance(ix, (int, np.integer)) or not 0 <= ix < V:
                allowed = f"an index in [0, {V})" + (" or None" if none_ok else "")
                raise ValueError(f"{name}[{t}] must be {allowed}, got {ix!r}")


def _check_model_args(data_x, ix_to_char, char_to_ix, num_iterations, n_a, dino_names,
                      vocab_size) -> tuple[list, int]:
    """Check model's arguments; return the stripped names and the newline's index."""
    if isinstance(data_x, str) or not isinstance(data_x, (list, tuple)):
        raise TypeError("data_x must be a list of names (strings), e.g. "
                        f"load_dinos().split('\\n'), got {type(data_x).__name__}")
    for name, val, least in (("num_iterations", num_iterations, 0), ("n_a", n_a, 1),
                             ("dino_names", dino_names, 0), ("vocab_size", vocab_size, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {val!r}")
    examples = []
    for i, line in enumerate(data_x):
        if not isinstance(line, str):
            raise TypeError(f"data_x[{i}] must be a string, got {type(line).__name__}")
        examples.append(line.strip())
    if not examples:
        raise ValueError("data_x must hold at least one name")
    if not isinstance(char_to_ix, Mapping) or not isinstance(ix_to_char, Mapping):
        raise TypeError("char_to_ix and ix_to_char must be dicts (see char_maps)")
    newline = _check_newline(char_to_ix, vocab_size)
    for i, name in enumerate(examples):
        for ch in name:
            ix = char_to_ix.get(ch)
            if ix is None or not 0 <= ix < vocab_size:
                raise ValueError(f"data_x[{i}] = {name!r} has the character {ch!r}, which "
                                 f"char_to_ix does not map into [0, {vocab_size})")
    for ix in range(vocab_size):
        if ix not in ix_to_char:
            raise ValueError(f"ix_to_char has no character for index {ix}")
    return examples, newline


# ------------------------------------------------------------------- the graded functions
def sample(parameters, char_to_ix, seed):
    """Sample a name, one character at a time, feeding each sample back in (the course's).

    Starts from a zero input x<1> and a zero state. At each step::

        a = tanh(Wax x + Waa a_prev + b)
        y = softmax(Wya a + by)                      (vocab_size, 1)
        np.random.seed(counter + seed)
        idx = np.random.choice(range(vocab_size), p=y.ravel())

    then x becomes the one-hot of idx, and ``seed`` and ``counter`` are incremented. Stops
    after the newline index or after 50 characters (then a newline index is appended).
    Uses numpy's global random state (the course's protocol, kept for reproducibility).

    Args:
        parameters: dict with ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
            ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)``.
        char_to_ix: dict character -> index; must contain ``'\\n'``.
        seed: int.
    Returns:
        list of the sampled indices (Python ints), ending with the newline index.
    """
    p, n_a, vocab_size = _check_parameters(parameters, "sample")
    newline_character = _check_newline(char_to_ix, vocab_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    Waa, Wax, Wya, by, b = p["Waa"], p["Wax"], p["Wya"], p["by"], p["b"]

    x = np.zeros((vocab_size, 1))
    a_prev = np.zeros((n_a, 1))
    indices: list[int] = []
    idx, counter = -1, 0
    while idx != newline_character and counter != 50:
        a = np.tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)
        y = softmax(np.dot(Wya, a) + by)
        np.random.seed(counter + seed)  # noqa: NPY002 - the course's protocol
        idx = int(np.random.choice(range(vocab_size), p=y.ravel()))  # noqa: NPY002
        indices.append(idx)
        x = np.zeros((vocab_size, 1))
        x[idx] = 1
        a_prev = a
        seed += 1
        counter += 1
    if counter == 50:
        indices.append(newline_character)
    return indices


def optimize(X, Y, a_prev, parameters, learning_rate=0.01):
    """One step of the Dinosaurus training: forward, backward, clip at 5, SGD update.

    Loss ``L = sum_t -log(y_hat<t>[Y[t]])`` of the character RNN, its gradients through
    time (the course's ``rnn_step_backward``), clipped element-wise to [-5, 5]
    (:func:`clip`); then ``W -= learning_rate * dW`` for every parameter, in place in
    ``parameters`` (as the course).

    Args:
        X: list of T indices into the vocabulary; ``None`` means a zero input vector.
        Y: list of T target indices (X shifted one to the left, then the newline).
        a_prev: hidden state before the first step, (n_a, 1).
        parameters: dict with ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
            ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)`` (float64;
            updated in place).
        learning_rate: positive number.
    Returns:
        loss (float), gradients (dict ``dWaa, dWax, dWya, db, dby``, clipped), and the
        last hidden state a_last (n_a, 1).
    """
    p, n_a, V = _check_parameters(parameters, "optimize")
    if any(p[k] is not parameters[k] for k in p):
        raise TypeError("parameters must hold float64 numpy arrays (they are updated in place)")
    _check_sequences(X, Y, V)
    a_prev = check(a_prev, "a_prev", (("n_a", n_a), ("1", 1)), np.float64)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.floating)):
        raise TypeError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate}")
    return _optimize(X, Y, a_prev, parameters, learning_rate)


def _initialize_parameters(n_a, n_x, n_y):
    """The course's ``initialize_parameters``: small random weights, zero biases."""
    np.random.seed(1)  # noqa: NPY002 - the course's protocol
    Wax = np.random.randn(n_a, n_x) * 0.01  # noqa: NPY002
    Waa = np.random.randn(n_a, n_a) * 0.01  # noqa: NPY002
    Wya = np.random.randn(n_y, n_a) * 0.01  # noqa: NPY002
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": np.zeros((n_a, 1)),
            "by": np.zeros((n_y, 1))}


def _get_sample(sample_ix, ix_to_char) -> str:
    txt = "".join(ix_to_char[ix] for ix in sample_ix)
    return txt[0].upper() + txt[1:]


def model(data_x, ix_to_char, char_to_ix, num_iterations=35000, n_a=50, dino_names=7,
          vocab_size=27, verbose=False):
    """Train the Dinosaurus character-level RNN and print sampled names (the course's).

    Protocol (it reproduces the course's printed output for the same inputs): parameters
    from ``np.random.seed(1)``: ``Wax, Waa, Wya ~ randn * 0.01`` drawn in that order,
    biases zero; smoothed loss starting at ``-log(1/vocab_size) * dino_names``, updated as
    ``0.999 * loss + 0.001 * current``; the examples are the stripped lines, shuffled once
    after ``np.random.seed(0)``; iteration j trains on ``examples[j % len(examples)]``
    with ``X = [None] + indices`` and ``Y = indices + [newline]`` through
    :func:`optimize` (learning rate 0.01), carrying the hidden state across iterations.
    Every 2000 iterations it prints ``Iteration: %d, Loss: %f`` and ``dino_names`` names
    from :func:`sample` with seeds 0, 1, 2, ... (first letter capitalised). Uses numpy's
    global random state (the course's protocol, kept for reproducibility).

    Args:
        data_x: the training names, a list of strings, one name per line, already
            lower-cased, as the course calls it: ``model(data.split("\\n"), ...)``.
        ix_to_char: dict index -> character; char_to_ix: dict character -> index
            (see :func:`char_maps`).
        num_iterations: number of SGD steps (one name each).
        n_a: hidden units. dino_names: names sampled at each report.
        vocab_size: number of characters (indices 0 .. vocab_size-1).
        verbose: also print the course's debugging lines (X and Y of the first example).
    Returns:
        parameters (dict ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
        ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)``) and the last
        sampled name (capitalised, ending with ``'\\n'``; ``"abc"`` if none was sampled).
    """
    examples, ix_newline = _check_model_args(data_x, ix_to_char, char_to_ix, num_iterations,
                                             n_a, dino_names, vocab_size)
    parameters = _initialize_parameters(n_a, vocab_size, vocab_size)
    loss = -np.log(1.0 / vocab_size) * dino_names
    np.random.seed(0)  # noqa: NPY002 - the course's protocol
    np.random.shuffle(examples)  # noqa: NPY002
    a_prev = np.zeros((n_a, 1))
    last_dino_name = "abc"
    for j in range(num_iterations):
        idx = j % len(examples)
        single_example = examples[idx]
        single_example_ix = [char_to_ix[ch] for ch in single_example]
        X = [None] + single_example_ix
        Y = X[1:] + [ix_newline]
        curr_loss, _, a_prev = _optimize(X, Y, a_prev, parameters, 0.01)
        if verbose and j in (0, len(examples) - 1, len(examples)):
            print("j = ", j, "idx = ", idx)
        if verbose and j == 0:
            print("single_example =", single_example)
            print("single_example_chars", list(single_example))
            print("single_example_ix", single_example_ix)
            print(" X = ", X, "\n", "Y =       ", Y, "\n")
        loss = loss * 0.999 + curr_loss * 0.001
        if j % 2000 == 0:
            print(f"Iteration: {j}, Loss: {loss:f}" + "\n")
            for seed in range(dino_names):
                last_dino_name = _get_sample(sample(parameters, char_to_ix, seed), ix_to_char)
                print(last_dino_name.replace("\n", ""))
            print("\n")
    return parameters, last_dino_name


def load_dinos() -> str:
    """The course's ``dinos.txt`` (1,536 dinosaur names, one per line), lower-cased.

    Returns the text (19,909 characters, no trailing newline); ``text.split("\\n")`` is
    the list of names that :func:`model` takes. The file ships with rnnkit as
    ``rnnkit/data/dinos.txt``.
    """
    return resources.files("rnnkit").joinpath("data/dinos.txt").read_text("ascii").lower()


def char_maps(text: str):
    """The course's vocabulary maps: sorted characters of ``text``, enumerated.

    For the dinosaur names: ``'\\n' -> 0``, ``'a' -> 1``, ..., ``'z' -> 26``.
    Returns ``char_to_ix`` (dict str -> int) and ``ix_to_char`` (dict int -> str).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    chars = sorted(set(text))
    return {ch: i for i, ch in enumerate(chars)}, dict(enumerate(chars))
