"""Assets of ``azure.ai.ml.entities``: ``Data``, ``Model``, ``Environment``, ``AmlCompute``.

Each is a description until ``ml_client.<kind>.create_or_update`` registers it in the workspace
(datasets, models and environments are versioned there as parallelrun's v1 API registers them);
``.get`` gives it back with ``version`` and ``path`` filled in, and ``azureml:<name>:<version>``
names it in a job's inputs and environment.
"""

from __future__ import annotations

from typing import Any

from parallelrun.ml._io import _Fields, absolute


class Data(_Fields):
    """A data asset: ``path`` (a folder, a file, or a folder with an ``MLTable`` file) of
    ``type`` ``uri_folder`` (default), ``uri_file`` or ``mltable``.

    Example: ``ml_client.data.create_or_update(Data(name="digits", path="./images"))``.
    """

    _FIELDS = ("name", "version", "path", "type", "description", "tags", "properties", "id")

    def __init__(self, *, name: str | None = None, version: str | None = None,
                 path: str | None = None, type: str = "uri_folder",
                 description: str | None = None, tags: dict | None = None,
                 properties: dict | None = None, **kwargs: Any):
        super().__init__(name=name, version=version, path=absolute(path), type=type,
                         description=description, tags=dict(tags or {}),
                         properties=dict(properties or {}), **kwargs)


class Model(_Fields):
    """A model asset: a file or folder ``path`` registered under ``name``.

    Example: ``ml_client.models.create_or_update(Model(name="mnist", path="./mnist_models"))``.
    """

    _FIELDS = ("name", "version", "path", "type", "description", "tags", "properties", "id")

    def __init__(self, *, name: str | None = None, version: str | None = None,
                 path: str | None = None, type: str = "custom_model",
                 description: str | None = None, tags: dict | None = None,
                 properties: dict | None = None, **kwargs: Any):
        super().__init__(name=name, version=version, path=absolute(path), type=type,
                         description=description, tags=dict(tags or {}),
                         properties=dict(properties or {}), **kwargs)


class Environment(_Fields):
    """An environment: a ``conda_file`` (its pip packages are installed into a virtualenv of
    parallelrun's; ``image`` is recorded, not pulled), or a registered ``name``/``version``.

    Example: ``Environment(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04",
    conda_file="./env.yml")``.
    """

    _FIELDS = ("name", "version", "image", "conda_file", "description", "tags", "build",
               "inference_config", "os_type", "id")

    def __init__(self, *, name: str | None = None, version: str | None = None,
                 image: str | None = None, conda_file: str | None = None,
                 description: str | None = None, tags: dict | None = None, **kwargs: Any):
        super().__init__(name=name, version=version, image=image,
                         conda_file=absolute(conda_file), description=description,
                         tags=dict(tags or {}), **kwargs)
        #: set once registered (``ml_client.environments.create_or_update``)
        self._registered = False

    def _reference(self) -> str | None:
        """``azureml:name:version`` for a registered environment (what a job names)."""
        if self._registered and self.name:
            return f"azureml:{self.name}:{self.version}" if self.version else \
                f"azureml:{self.name}@latest"
        return None

    def _to_dict(self) -> dict:
        values = super()._to_dict()
        values.pop("tags", None) if not values.get("tags") else None
        return values


class AmlCompute(_Fields):
    """A compute cluster: ``max_instances`` nodes (each a set of local worker processes).

    Example: ``ml_client.compute.begin_create_or_update(AmlCompute(name="cpu-cluster",
    max_instances=2)).result()``.
    """

    _FIELDS = ("name", "type", "size", "min_instances", "max_instances",
               "idle_time_before_scale_down", "tier", "description", "tags")

    def __init__(self, *, name: str | None = None, size: str | None = None,
                 min_instances: int | None = None, max_instances: int | None = None,
                 **kwargs: Any):
        kwargs.pop("type", None)
        super().__init__(name=name, type="amlcompute", size=size, min_instances=min_instances,
                         max_instances=max_instances, **kwargs)


__all__ = ["AmlCompute", "Data", "Environment", "Model"]
