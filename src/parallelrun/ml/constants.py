"""``azure.ai.ml.constants``: ``AssetTypes`` and ``InputOutputModes``."""


class AssetTypes:
    """Types of inputs, outputs and data assets."""

    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"
    MLFLOW_MODEL = "mlflow_model"
    TRITON_MODEL = "triton_model"
    CUSTOM_MODEL = "custom_model"


class InputOutputModes:
    """How data reaches a job. Locally every mode reads and writes the same folder; the mode
    is kept as written."""

    MOUNT = "mount"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    RO_MOUNT = "ro_mount"
    RW_MOUNT = "rw_mount"
    EVAL_MOUNT = "eval_mount"
    EVAL_DOWNLOAD = "eval_download"
    DIRECT = "direct"


__all__ = ["AssetTypes", "InputOutputModes"]
