"""Where a step's outputs go, and their delivery when it finished.

Each output of a step run is a dict, recorded in the catalog with the step run:

``datastore``, ``path_on_datastore``  where it lives (None, None: a local path a job file named)
``local_path``   the folder the step writes
``upload``       whether the folder is copied to the datastore when the step finishes (a remote
                 datastore, or ``as_upload()``); not recorded
``owned``        whether the folder is this step run's own (a script step starts it empty); a
                 folder the user named is never cleared
``registered``   ``{name, version}`` once ``register_on_complete`` made it a dataset version
``origin``       the step run that wrote it, when reused from an earlier run

An output on a local datastore is written in place; one bound for a remote datastore (or an
upload) is written in the run's folder first. A resumed step keeps the places of its earlier
attempt.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from parallelrun.pipeline.output_datasets import OutputDatasetConfig
from parallelrun.pipeline.pipeline_data import DatastorePlacement, LocalPlacement, PipelineData
from parallelrun.pipeline.run_folder import staged_output_folder


def recorded(outputs: dict[str, dict]) -> dict[str, dict]:
    """The outputs as the catalog keeps them (without the per-attempt ``upload`` flag)."""
    return {name: {k: v for k, v in output.items() if k != "upload"}
            for name, output in outputs.items()}


class OutputPlacement:
    """Places and delivers the outputs of a run's steps."""

    def __init__(self, workspace: Any, run_dir: str, log: logging.Logger):
        self.ws = workspace
        self.run_dir = run_dir
        self.log = log

    def plan(self, step, row: dict) -> dict[str, dict]:
        """Where each output of the step goes: kept from an earlier attempt, else new (each
        folder exists on return)."""
        known = row.get("outputs") or {}
        outputs = {}
        for output in step.outputs:
            if output.name in known and known[output.name].get("local_path"):
                outputs[output.name] = dict(known[output.name])
                outputs[output.name]["upload"] = self._needs_upload(output)
                outputs[output.name].pop("registered", None)
            else:
                outputs[output.name] = self._new_output(output, row["id"])
            os.makedirs(outputs[output.name]["local_path"], exist_ok=True)
        return outputs

    def deliver(self, step, outputs: dict[str, dict]) -> bool:
        """A finished step's outputs uploaded and registered as its options ask; True when
        a registration changed what the catalog should record."""
        self._upload(outputs, step)
        return self._register(outputs, step)

    # where --------------------------------------------------------------------------------------
    def _datastore(self, output: PipelineData):
        from parallelrun.workspace.datastore import Datastore

        store = output.datastore
        if store is None:
            return self.ws.get_default_datastore()
        if isinstance(store, str):
            return Datastore.get(self.ws, store)
        return store

    def _placement_store(self, placement: DatastorePlacement):
        from parallelrun.workspace.datastore import Datastore

        return Datastore.get(self.ws, placement.datastore) if placement.datastore is not None \
            else self.ws.get_default_datastore()

    def _needs_upload(self, output: PipelineData) -> bool:
        placement = output.placement
        if isinstance(placement, LocalPlacement):
            return False
        if isinstance(output, OutputDatasetConfig) and output.mode == "upload":
            return True   # written in the run's folder, copied when the step finishes
        store = self._placement_store(placement) if placement else self._datastore(output)
        return getattr(store, "kind", "local") != "local"

    def _new_output(self, output: PipelineData, step_run_id: str) -> dict:
        placement = output.placement
        if isinstance(placement, LocalPlacement):
            return {"datastore": None, "path_on_datastore": None,
                    "local_path": os.path.abspath(placement.folder), "upload": False,
                    "owned": False}
        if placement is not None:
            store = self._placement_store(placement)
            path = output.path_on_datastore(step_run_id) if isinstance(
                output, OutputDatasetConfig) else placement.path.strip("/")
        else:
            store = self._datastore(output)
            path = f"azureml/{step_run_id}/{output.name}"
        if getattr(store, "kind", "local") == "local" and not self._needs_upload(output):
            local = os.path.join(store.path_on_disk, *path.split("/"))
            upload = False
            owned = placement is None   # a path of this step run's own, not one the user named
        else:
            local = staged_output_folder(self.run_dir, step_run_id, output.name)
            upload = True
            owned = True
        return {"datastore": store.name, "path_on_datastore": path, "local_path": local,
                "upload": upload, "owned": owned}

    # delivery -----------------------------------------------------------------------------------
    def _upload(self, outputs: dict[str, dict], step) -> None:
        from parallelrun.workspace.datastore import Datastore

        declared = {o.name: o for o in step.outputs}
        for name, output in outputs.items():
            if output.get("upload"):
                store = Datastore.get(self.ws, output["datastore"])
                self.log.info("[%s] uploading output %s to %s:%s", step.name, name, store.name,
                              output["path_on_datastore"])
                config = declared.get(name)
                if isinstance(config, OutputDatasetConfig) and config.mode == "upload":
                    # as_upload(overwrite, source_globs): only the chosen files, existing
                    # files kept unless overwrite
                    overwrite = bool(config.upload_options and config.upload_options[0])
                    store.upload_files(config.files_to_upload(output["local_path"]),
                                       relative_root=output["local_path"],
                                       target_path=output["path_on_datastore"],
                                       overwrite=overwrite)
                else:
                    store.upload(output["local_path"], target_path=output["path_on_datastore"],
                                 overwrite=True)

    def _register(self, outputs: dict[str, dict], step) -> bool:
        """register_on_complete: each such output, delivered, becomes a new dataset version
        (recorded in the step run's outputs as ``registered``)."""
        from parallelrun.workspace.datastore import Datastore

        changed = False
        for config in step.outputs:
            if not isinstance(config, OutputDatasetConfig) or not config.registration_options:
                continue
            options = config.registration_options
            output = outputs[config.name]
            location = Datastore.get(self.ws, output["datastore"]).path(
                output["path_on_datastore"])
            if not config.files_to_upload(output["local_path"]):
                self.log.info("[%s] output %s holds no files: not registered as dataset %r",
                              step.name, config.name, options["name"])
                continue
            dataset = config.dataset_at(location).register(
                self.ws, options["name"], description=options["description"],
                tags=options["tags"], create_new_version=True)
            output["registered"] = {"name": options["name"], "version": dataset.version}
            changed = True
            self.log.info("[%s] output %s registered as dataset %s version %s", step.name,
                          config.name, options["name"], dataset.version)
        return changed
