"""Stand-in for ``mlflow.models``: ``Model``, an MLflow model folder's ``MLmodel`` file."""

from __future__ import annotations

import datetime
import os
import uuid
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from parallelrun.compat.installed import not_in_standin

MLMODEL_FILE = "MLmodel"


class Model:
    """An ``MLmodel`` file: the flavours a model folder can be loaded as.

    Example: ``Model.load("iris-model").flavors["sklearn"]["pickled_model"]``.
    """

    def __init__(self, flavors: dict | None = None, utc_time_created: str | None = None,
                 model_uuid: str | None = None, **fields: Any):
        self.flavors: dict = dict(flavors or {})
        self.utc_time_created = utc_time_created or \
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.fields = fields

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """The ``MLmodel`` file of a model folder (or the file itself)."""
        path = local_path(path)
        file = os.path.join(path, MLMODEL_FILE) if os.path.isdir(path) else path
        try:
            with open(file, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except FileNotFoundError:
            raise OSError(f"{path}: no MLmodel file; an MLflow model is a folder holding MLmodel "
                          "and the model's files (mlflow.sklearn.save_model writes one)") from None
        if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
            raise OSError(f"{file}: not an MLmodel file (no flavors:)")
        return cls(**data)

    def add_flavor(self, name: str, **params: Any) -> "Model":
        self.flavors[name] = params
        return self

    def to_dict(self) -> dict:
        return {**self.fields, "flavors": self.flavors, "model_uuid": self.model_uuid,
                "utc_time_created": self.utc_time_created}

    def save(self, path: str | os.PathLike) -> None:
        """Write the ``MLmodel`` file at ``path``."""
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.to_dict(), handle, default_flow_style=False)


def local_path(model_uri: str | os.PathLike) -> str:
    """The local folder of a model URI: a path or ``file://``; others are refused by name."""
    text = os.fspath(model_uri)
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:     # (one letter: a Windows drive)
        raise OSError(f"{text!r}: parallelrun's mlflow stand-in loads local model folders or "
                      "file:// URIs; there is no tracking server or registry for "
                      f"{parsed.scheme}:/ here. Give the folder (for example the job's model "
                      "input, ${{inputs.model}} or AZUREML_MODEL_DIR)")
    return text


__getattr__ = not_in_standin("mlflow.models", "Model")
