"""Azure ML's SDK v2 (``azure.ai.ml``) over parallelrun: code written for it runs after
changing ``azure.ai.ml`` to ``parallelrun.ml`` in its imports and the ``MLClient(...)`` line.

Example (Microsoft's parallel samples, imports changed)::

    from parallelrun.ml import MLClient, Input, Output, load_component
    from parallelrun.ml.dsl import pipeline
    from parallelrun.ml.constants import AssetTypes, InputOutputModes
    from parallelrun.ml.parallel import parallel_run_function, RunFunction

    ml_client = MLClient.from_config(credential=None)
    ...
    pipeline_job = ml_client.jobs.create_or_update(my_job, experiment_name="hello")
    ml_client.jobs.stream(pipeline_job.name)

Submodules as in ``azure.ai.ml``: :mod:`~parallelrun.ml.entities`, :mod:`~parallelrun.ml.dsl`,
:mod:`~parallelrun.ml.parallel`, :mod:`~parallelrun.ml.constants`. Jobs built in Python and
jobs loaded from YAML (``load_job``) are the same objects and run through the same code as
``parallelrun job submit``. Names are imported on first use, so ``import parallelrun.ml`` loads
nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "MLClient": "parallelrun.ml._client",
    "Input": "parallelrun.ml._io",
    "Output": "parallelrun.ml._io",
    "command": "parallelrun.ml._nodes",
    "load_component": "parallelrun.ml._nodes",
    "load_job": "parallelrun.ml._load",
}
_SUBMODULES = ("constants", "dsl", "entities", "parallel")

__all__ = [*_NAMES, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'parallelrun.ml' has no attribute {name!r}; it has "
                         f"{', '.join(__all__)}")


def __dir__() -> list[str]:
    return sorted(__all__)
