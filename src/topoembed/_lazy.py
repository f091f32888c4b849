"""Modules imported on first use: ``topoembed --help`` need not pay for scipy (about 0.45 s)."""
from __future__ import annotations

import importlib
import types


class _Deferred(types.ModuleType):
    """Stands for a module until an attribute is read; then imports it and hands that on."""

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self.__name__), attr)


def module(name: str) -> types.ModuleType:
    """``name``, imported at the first attribute access (``sp.csr_matrix``, not at import time)."""
    return _Deferred(name)
