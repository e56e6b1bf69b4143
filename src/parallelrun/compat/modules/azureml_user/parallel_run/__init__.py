"""Stand-in for ``azureml_user.parallel_run``: the ``EntryScript`` helper."""

from parallelrun.compat import module_getattr
from parallelrun.script import EntryScript

__all__ = ["EntryScript"]


__getattr__ = module_getattr("azureml_user.parallel_run")
