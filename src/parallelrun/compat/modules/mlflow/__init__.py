"""Stand-in for ``mlflow`` inside parallelrun workers and command nodes (when mlflow itself is
not installed there; see :mod:`parallelrun.compat.installed`).

What entry scripts of Azure ML's parallel samples use: MLflow model folders of the ``sklearn``
flavour, saved and loaded as MLflow writes and reads them (an ``MLmodel`` file and a pickled
model):

- ``mlflow.sklearn.save_model(model, path)``, ``mlflow.sklearn.load_model(path)``
- ``mlflow.pyfunc.load_model(path)`` (``.predict(data)``, ``.metadata``, ``.get_raw_model()``)
- ``mlflow.models.Model.load(path)`` (the ``MLmodel`` file: ``flavors``, ...)
- ``mlflow.autolog()`` / ``mlflow.sklearn.autolog()``: accepted; there is no tracking server to
  log to, so nothing is logged

Model URIs are local folders or ``file://`` URIs. The real mlflow is ~40 packages (a web server,
a Databricks SDK, OpenTelemetry...) for these few functions, so parallelrun does not depend on it.
"""

from parallelrun.compat.installed import installed_instead, not_in_standin

if not installed_instead(__name__, __file__):
    import importlib as _importlib

    __version__ = "0+parallelrun.standin"
    _SUBMODULES = ("models", "pyfunc", "sklearn")

    def autolog(*args, **kwargs) -> None:
        """Accepted and ignored: no tracking server here (Azure ML logs to the workspace's)."""

    _missing = not_in_standin(
        "mlflow", "autolog, mlflow.sklearn.save_model/load_model/autolog, "
                  "mlflow.pyfunc.load_model, mlflow.models.Model")

    def __getattr__(name: str):
        # `import mlflow; mlflow.sklearn.save_model(...)` works with the real package too
        if name in _SUBMODULES:
            return _importlib.import_module(f"{__name__}.{name}")
        return _missing(name)
