"""Names of a package imported on first use (PEP 562), for ``parallelrun`` and ``parallelrun.data``.

Both keep their heavy modules out of ``import``: the top level out of Ray, the web stack and
pandas; the data layer out of a worker process, which unpickles a ``MiniBatch`` and needs
none of the planners.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose public names are ``exports``
    (name -> the module defining it), each imported when first asked for and kept.

    Example: ``__getattr__, __dir__ = lazy_exports(__name__, {"Dataset": "parallelrun.data.dataset"})``.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
