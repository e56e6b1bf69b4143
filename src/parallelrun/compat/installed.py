"""Stand-ins that step aside for the real package: ``mlflow`` and ``mltable`` in ``modules/``.

parallelrun's ``azureml.*`` stand-ins replace an SDK that cannot run off Azure. ``mlflow`` and
``mltable`` are different: they are ordinary packages a user may install in the workers'
environment, and then the real one must be used (a model of another flavour, a tracking
server...). So each of these stand-ins starts with :func:`installed_instead`: when the package
is installed anywhere else on ``sys.path``, that package is imported in the stand-in's place and
the stand-in defines nothing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def installed_instead(name: str, standin_file: str) -> bool:
    """Import the installed package ``name`` in place of the stand-in whose ``__init__.py`` is
    ``standin_file``; False when there is none (the stand-in then defines itself).

    Example, first lines of a stand-in package::

        if not installed_instead(__name__, __file__):
            def load_model(...): ...
    """
    standins = os.path.dirname(os.path.dirname(os.path.abspath(standin_file)))
    search = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != standins]
    spec = importlib.machinery.PathFinder.find_spec(name, search)
    if spec is None or spec.origin is None or spec.loader is None:
        return False     # not installed (or only a namespace folder of that name)
    standin = sys.modules.get(name)
    module = importlib.util.module_from_spec(spec)
    # the import system returns what sys.modules holds once the stand-in's code has run
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules[name] = standin
        raise
    return True


def not_in_standin(package: str, provided: str):
    """A module ``__getattr__`` for a stand-in: a name it lacks is an error naming what it has
    and how to get the real package."""

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        # an ImportError, as parallelrun.compat's azureml stand-ins raise: ``from mlflow import
        # x`` would turn an AttributeError into a bare "cannot import name"
        raise ModuleNotFoundError(
            f"{package}.{name} is not provided by parallelrun's stand-in for {package.split('.')[0]}"
            f" (it provides {provided}). Install {package.split('.')[0]} in the workers' "
            "environment (for example in the job's conda file) and parallelrun uses it instead.",
            name=f"{package}.{name}")

    return __getattr__
