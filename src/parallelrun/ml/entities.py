"""``azure.ai.ml.entities``: jobs, nodes, components and assets."""

from parallelrun.ml._assets import AmlCompute, Data, Environment, Model
from parallelrun.ml._nodes import (
    BatchRetrySettings, Command, CommandComponent, Component, JobResourceConfiguration, Parallel,
    ParallelComponent, ResourceConfiguration,
)
from parallelrun.ml._nodes import Parallel as ParallelJob
from parallelrun.ml._nodes import RunFunction
from parallelrun.ml._pipeline import PipelineJob, PipelineJobSettings

__all__ = ["AmlCompute", "BatchRetrySettings", "Command", "CommandComponent", "Component",
           "Data", "Environment", "JobResourceConfiguration", "Model", "Parallel",
           "ParallelComponent", "ParallelJob", "PipelineJob", "PipelineJobSettings",
           "ResourceConfiguration", "RunFunction"]
