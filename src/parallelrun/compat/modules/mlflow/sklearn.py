"""Stand-in for ``mlflow.sklearn``: save and load scikit-learn models as MLflow model folders.

``save_model`` writes what MLflow writes for the ``sklearn`` flavour (``MLmodel`` with the
``python_function`` and ``sklearn`` flavours, the pickled model, ``conda.yaml``,
``python_env.yaml``, ``requirements.txt``), so the real mlflow loads these folders too;
``load_model`` reads folders MLflow wrote (``serialization_format`` pickle or cloudpickle).
"""

from __future__ import annotations

import os
import pickle
import platform
from typing import Any

import yaml

from mlflow.models import MLMODEL_FILE, Model, local_path
from parallelrun.compat.installed import not_in_standin

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SUPPORTED_SERIALIZATION_FORMATS = [SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_CLOUDPICKLE]


def autolog(*args, **kwargs) -> None:
    """Accepted and ignored: no tracking server here."""


def save_model(sk_model: Any, path: str | os.PathLike, conda_env: Any = None,
               code_paths: Any = None, mlflow_model: Model | None = None,
               serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
               signature: Any = None, input_example: Any = None, pip_requirements: Any = None,
               extra_pip_requirements: Any = None, pyfunc_predict_fn: str = "predict",
               metadata: dict | None = None) -> None:
    """Save ``sk_model`` as an MLflow model folder at ``path`` (which must not exist or be
    empty, as in MLflow)."""
    import sklearn

    path = os.path.abspath(local_path(path))
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise ValueError(f"serialization_format {serialization_format!r}: one of "
                         f"{SUPPORTED_SERIALIZATION_FORMATS}")
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise OSError(f"Path '{path}' already exists and is not empty")
    os.makedirs(path, exist_ok=True)
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        try:
            import cloudpickle as dumper
        except ImportError:                       # plain pickle reads the same, for sklearn
            dumper, serialization_format = pickle, SERIALIZATION_FORMAT_PICKLE
    else:
        dumper = pickle
    with open(os.path.join(path, "model.pkl"), "wb") as handle:
        dumper.dump(sk_model, handle)
    python = platform.python_version()
    requirements = [f"scikit-learn=={sklearn.__version__}"]
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        import cloudpickle

        requirements.append(f"cloudpickle=={cloudpickle.__version__}")
    requirements += list(extra_pip_requirements or [])
    model = mlflow_model or Model()
    model.add_flavor("python_function", loader_module="mlflow.sklearn", model_path="model.pkl",
                     predict_fn=pyfunc_predict_fn, python_version=python,
                     env={"conda": "conda.yaml", "virtualenv": "python_env.yaml"})
    model.add_flavor(FLAVOR_NAME, pickled_model="model.pkl", sklearn_version=sklearn.__version__,
                     serialization_format=serialization_format, code=None)
    if metadata:
        model.fields["metadata"] = metadata
    model.save(os.path.join(path, MLMODEL_FILE))
    with open(os.path.join(path, "requirements.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(["mlflow", *requirements]) + "\n")
    with open(os.path.join(path, "conda.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(conda_env if isinstance(conda_env, dict) else
                       {"name": "mlflow-env", "channels": ["conda-forge"],
                        "dependencies": [f"python={python}", "pip",
                                         {"pip": ["mlflow", *requirements]}]}, handle)
    with open(os.path.join(path, "python_env.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"python": python, "build_dependencies": ["pip"],
                        "dependencies": ["-r requirements.txt"]}, handle)


def load_model(model_uri: str | os.PathLike, dst_path: str | None = None) -> Any:
    """The scikit-learn model of an MLflow model folder (its ``sklearn`` flavour)."""
    path = local_path(model_uri)
    flavor = Model.load(path).flavors.get(FLAVOR_NAME)
    if not isinstance(flavor, dict):
        raise OSError(f"{path}: the model has no sklearn flavour (MLmodel flavors: "
                      f"{', '.join(Model.load(path).flavors)})")
    return _load_pickled(os.path.join(path, str(flavor.get("pickled_model", "model.pkl"))),
                         str(flavor.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)))


def _load_pickled(file: str, serialization_format: str) -> Any:
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise OSError(f"{file}: serialization_format {serialization_format!r} is not one of "
                      f"{SUPPORTED_SERIALIZATION_FORMATS}")
    # cloudpickle writes pickles: pickle.load reads them (and imports cloudpickle if they need it)
    with open(file, "rb") as handle:
        return pickle.load(handle)


class _SklearnModelWrapper:
    """What ``mlflow.pyfunc`` calls for the sklearn flavour: ``predict`` (or the flavour's
    ``predict_fn``) of the model."""

    def __init__(self, sk_model: Any, predict_fn: str = "predict"):
        self.sklearn_model = sk_model
        self.predict_fn = predict_fn

    def predict(self, data: Any, params: dict | None = None) -> Any:
        return getattr(self.sklearn_model, self.predict_fn)(data)


def _load_pyfunc(path: str, predict_fn: str = "predict") -> _SklearnModelWrapper:
    return _SklearnModelWrapper(load_model(path), predict_fn)


__getattr__ = not_in_standin("mlflow.sklearn", "save_model, load_model, autolog")
