"""Shared test settings: strict floating-point errors, and the optional PyTorch import."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _strict_numpy():
    # overflow, invalid operations and division by zero are bugs in this library
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield
