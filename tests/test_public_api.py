"""The public surface: every exported name imports, is documented, and `import parallelrun` is light."""

from __future__ import annotations

import subprocess
import sys

import parallelrun


def test_every_public_name_is_exported_and_documented():
    for name in parallelrun.__all__:
        value = getattr(parallelrun, name)
        assert value.__doc__, f"parallelrun.{name} has no docstring"


def test_import_parallelrun_stays_light():
    code = ("import sys, parallelrun; heavy = [m for m in ('ray', 'fastapi', 'uvicorn', 'pandas', "
            "'pyarrow', 'numpy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_form_one_tree():
    for name in ("ConfigurationError", "EntryScriptError", "DataError", "StorageError",
                 "BackendError", "WorkspaceError", "JobFailedError"):
        assert issubclass(getattr(parallelrun, name), parallelrun.ParallelRunError)
    assert issubclass(parallelrun.StorageError, OSError)
    assert issubclass(parallelrun.DataError, ValueError)
