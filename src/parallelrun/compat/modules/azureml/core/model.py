"""Stand-in for ``azureml.core.model``: the workspace's ``Model`` for entry scripts.

``Model.get_model_path(name)`` gives the version the step was given (``models=[...]``); a model
the step was not given is looked up in the workspace's registry (the latest version, or
``version``), as Azure ML does, when the job runs in a workspace (pipeline steps do).
``Model.register``, ``Model.list(ws, tags=...)``, ``Model(ws, name)`` and ``model.download()``
are the workspace's own (:class:`parallelrun.workspace.models.Model`); inside ``run()`` the
workspace is ``Run.get_context().experiment.workspace``.
"""

from __future__ import annotations

from parallelrun.compat import module_getattr
from parallelrun.workspace.models import Model

__all__ = ["Model"]


__getattr__ = module_getattr("azureml.core.model")
