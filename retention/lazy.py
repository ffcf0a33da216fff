"""A package's public names imported from their modules on first use (a module-level
``__getattr__``, PEP 562): the workflow imports light modules of a package (figure specs,
the findings' report) on every parse or job without paying for the heavy ones beside them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, modules: Mapping[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``package``: each name of ``modules`` (name -> the module of
    ``package`` that defines it) is imported from that module when first read."""

    def __getattr__(name: str):
        if name in modules:
            return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
