"""The optional compiled backend (numba), behind one switch.

Transitional: the switch of :mod:`rnnkit.compiled` under its new name, while the engine
is rebuilt; the kernels move here.
"""

from ..compiled import available, disabled, enabled, set_enabled, unavailable_reason

__all__ = ["available", "enabled", "set_enabled", "disabled", "unavailable_reason"]
