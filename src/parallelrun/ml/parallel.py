"""``azure.ai.ml.parallel``: ``parallel_run_function`` and ``RunFunction``."""

from parallelrun.ml._nodes import Parallel as ParallelJob
from parallelrun.ml._nodes import RunFunction, parallel_run_function

__all__ = ["ParallelJob", "RunFunction", "parallel_run_function"]
