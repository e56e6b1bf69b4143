"""Stand-in for ``azureml.core.model``: ``Model.get_model_path`` for entry scripts."""

from __future__ import annotations

from parallelrun.compat import module_getattr
from parallelrun.script import current_context


class Model:
    """Only what entry scripts call: ``Model.get_model_path(model_name, version=None)``."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace=None) -> str:
        """Local folder of the model ``model_name`` that the step was given (``models=[...]``)."""
        context = current_context()
        if context is not None:
            key = f"{model_name}:{version}" if version is not None else model_name
            if key in context.models:
                # a registered model's file or folder inside its version folder, as Azure ML
                from parallelrun.workspace.models import model_entry_path

                return model_entry_path(context.models[key])
            given = ", ".join(sorted(k for k in context.models if ":" not in k)) or "none"
            raise ModelNotGivenError(
                f"model {key!r} was not given to this step (models given: {given}); pass it in "
                "ParallelRunStep(models=[...]) or run_job(models=...)")
        import parallelrun

        return parallelrun.Model.get_model_path(model_name, version=version, _workspace=_workspace)


class ModelNotGivenError(LookupError):
    pass


__getattr__ = module_getattr("azureml.core.model")
