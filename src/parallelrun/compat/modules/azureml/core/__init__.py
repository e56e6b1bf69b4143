"""Stand-in for ``azureml.core`` inside parallelrun workers: ``Model`` and ``Run``."""

from azureml.core.model import Model
from azureml.core.run import Run

from parallelrun.compat import module_getattr

__all__ = ["Model", "Run"]


__getattr__ = module_getattr("azureml.core")
