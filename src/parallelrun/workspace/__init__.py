"""The workspace layer: what is set up before a run and remembered between runs.

One module per concept: :mod:`catalog` (the SQLite file), :mod:`workspace` (``Workspace``, its
folder, ``config.json``, compute targets), :mod:`datastore` (``Datastore``, ``DataPath``: local
folders, Azure Blob, S3), :mod:`datasets` (registered, versioned datasets) and :mod:`models`
(registered, versioned models).
"""

from parallelrun.workspace.datastore import DataPath, Datastore
from parallelrun.workspace.models import Model
from parallelrun.workspace.workspace import Workspace

__all__ = ["DataPath", "Datastore", "Model", "Workspace"]
