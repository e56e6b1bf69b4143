"""Stand-in for ``mlflow.pyfunc``: ``load_model`` for models whose ``python_function`` flavour
is loaded by ``mlflow.sklearn`` (what ``mlflow.sklearn.save_model`` writes)."""

from __future__ import annotations

import os
from typing import Any

from mlflow.models import Model, local_path
from parallelrun.compat.installed import not_in_standin

FLAVOR_NAME = "python_function"
#: loader modules this stand-in can load (MLmodel ``python_function.loader_module``)
LOADERS = ("mlflow.sklearn",)


class PyFuncModel:
    """A loaded model: ``predict(data)`` as MLflow's generic interface."""

    def __init__(self, model_meta: Model, model_impl: Any):
        self.metadata = model_meta
        self._model_impl = model_impl

    def predict(self, data: Any, params: dict | None = None) -> Any:
        return self._model_impl.predict(data, params=params)

    def get_raw_model(self) -> Any:
        """The model the flavour loaded (for sklearn: the estimator)."""
        return getattr(self._model_impl, "sklearn_model", self._model_impl)

    def __repr__(self) -> str:
        loader = self.metadata.flavors.get(FLAVOR_NAME, {}).get("loader_module")
        return f"mlflow.pyfunc.loaded_model:\n  flavor: {loader}"


def load_model(model_uri: str | os.PathLike, suppress_warnings: bool = False,
               dst_path: str | None = None, model_config: Any = None) -> PyFuncModel:
    """An MLflow model folder as a :class:`PyFuncModel`."""
    path = local_path(model_uri)
    meta = Model.load(path)
    flavor = meta.flavors.get(FLAVOR_NAME)
    if not isinstance(flavor, dict):
        raise OSError(f"{path}: the model has no python_function flavour (MLmodel flavors: "
                      f"{', '.join(meta.flavors)}); load it with its own flavour's load_model")
    loader = flavor.get("loader_module")
    if loader not in LOADERS:
        raise OSError(f"{path}: python_function loader_module {loader!r}: parallelrun's mlflow "
                      f"stand-in loads {', '.join(LOADERS)} models; install mlflow in the "
                      "workers' environment for the others")
    from mlflow import sklearn

    return PyFuncModel(meta, sklearn._load_pyfunc(path, str(flavor.get("predict_fn") or "predict")))


__getattr__ = not_in_standin("mlflow.pyfunc", "load_model, PyFuncModel")
