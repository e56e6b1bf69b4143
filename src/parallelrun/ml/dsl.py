"""``azure.ai.ml.dsl``: the ``@pipeline`` decorator."""

from parallelrun.ml._pipeline import pipeline

__all__ = ["pipeline"]
