"""Stand-in for the ``azureml`` namespace inside parallelrun workers (see parallelrun.compat)."""

import importlib.abc
import sys

from parallelrun.compat import PROVIDED, module_getattr, not_provided


class _NotProvidedFinder(importlib.abc.MetaPathFinder):
    """Answers imports of azureml.* modules parallelrun lacks with a clear error."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ("azureml", "azureml_user") and fullname not in PROVIDED \
                and fullname not in ("azureml", "azureml_user"):
            raise not_provided(fullname)
        return None


if not any(isinstance(f, _NotProvidedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _NotProvidedFinder())


__getattr__ = module_getattr("azureml")
