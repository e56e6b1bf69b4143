"""Azure ML compatibility for entry scripts: ``azureml.core.Model``, ``Run``, ``EntryScript``.

Entry scripts written for Azure ML import ``azureml.core`` and ``azureml_user.parallel_run``.
parallelrun ships small stand-ins for what such scripts use, in ``compat/modules/``, and the
worker puts that folder on ``sys.path`` *only inside worker processes*, right before it imports
the entry script. Nothing named ``azureml`` is installed into the environment, so a real Azure ML
SDK beside parallelrun is not shadowed for any other code.

What is provided (everything else under ``azureml.*`` fails with an ImportError that names the
symbol and says it is not provided):

- ``azureml.core.Model`` / ``azureml.core.model.Model``: the workspace's ``Model``:
  ``Model.get_model_path(name, version=None)`` (the version the step was given, else the
  workspace's registry), ``Model.register``, ``Model.list(ws, tags=...)``, ``Model(ws, name)``,
  ``model.download()``
- ``azureml.core.Run`` / ``azureml.core.run.Run``: ``Run.get_context()`` with ``log``,
  ``log_list``, ``log_row``, ``log_table``, ``tag``, ``set_tags``, ``get_tags``,
  ``input_datasets``, ``id``, ``experiment``, ``parent``, ``get_status``, ``child_run``,
  ``upload_file``, ``register_model``
- ``azureml_user.parallel_run.EntryScript``

Turn it off with the environment variable ``PARALLELRUN_AZUREML_COMPAT=0`` (for example in
``ParallelRunConfig(environment_variables=...)``), so that scripts import a real SDK installed in
the workers' environment instead.
"""

from __future__ import annotations

import os
from pathlib import Path

MODULES_DIR = str(Path(__file__).resolve().parent / "modules")
PROVIDED = {
    "azureml.core": ("Model", "Run"),
    "azureml.core.model": ("Model",),
    "azureml.core.run": ("Run",),
    "azureml_user.parallel_run": ("EntryScript",),
}


def enabled() -> bool:
    return os.environ.get("PARALLELRUN_AZUREML_COMPAT", "1").strip().lower() not in ("0", "false", "no", "off")


def not_provided(symbol: str) -> ImportError:
    """The error for an Azure ML name parallelrun does not provide inside entry scripts."""
    provided = "; ".join(f"{module}: {', '.join(names)}" for module, names in PROVIDED.items())
    return ModuleNotFoundError(
        f"{symbol} is not provided by parallelrun inside entry scripts (parallelrun provides "
        f"{provided}). Use parallelrun's own API for it, or set PARALLELRUN_AZUREML_COMPAT=0 "
        "and install the Azure ML SDK in the workers' environment.", name=symbol)


def module_getattr(module: str):
    """A module ``__getattr__`` that answers names the stand-in lacks with :func:`not_provided`."""

    def __getattr__(name: str):
        if name.startswith("__"):
            # the import machinery probes dunders (__path__, __file__...): a plain "no"
            raise AttributeError(name)
        raise not_provided(f"{module}.{name}")

    return __getattr__
