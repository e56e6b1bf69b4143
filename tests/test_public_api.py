"""The public surface: every exported name imports, is documented, and `import parallelrun` is light."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import parallelrun
from parallelrun import errors

SRC = Path(parallelrun.__file__).parent


def _own_doc(name: str, value: object) -> str:
    """The docstring written for ``value`` itself: not one inherited from its type (a str
    constant), nor the signature a dataclass makes up when it has none."""
    if inspect.isclass(value):
        doc = vars(value).get("__doc__") or ""
        return "" if doc.startswith(f"{value.__name__}(") else doc
    if inspect.isfunction(value) or inspect.ismethod(value):
        return value.__doc__ or ""
    # a constant: documented by a ``#:`` comment right above its assignment in its module
    module = importlib.import_module(parallelrun._EXPORTS[name])
    lines = inspect.getsource(module).splitlines()
    for number, line in enumerate(lines):
        if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=", line):
            return lines[number - 1][2:].strip() if lines[number - 1].startswith("#:") else ""
    return ""


def test_every_public_name_is_exported_and_documented():
    undocumented = [name for name in parallelrun.__all__
                    if not _own_doc(name, getattr(parallelrun, name)).strip()]
    assert undocumented == []


def test_an_inherited_or_generated_docstring_does_not_count():
    # the check above must fail for what only looks documented
    import dataclasses

    @dataclasses.dataclass
    class Bare:
        x: int

    assert Bare.__doc__ and not _own_doc("Bare", Bare)
    # a str constant has str's docstring; it counts only with its ``#:`` comment
    documented = _own_doc("DEFAULT_CPU_IMAGE", parallelrun.DEFAULT_CPU_IMAGE)
    assert documented and documented != str.__doc__


def test_import_parallelrun_stays_light():
    code = ("import sys, parallelrun; heavy = [m for m in ('ray', 'fastapi', 'uvicorn', 'pandas', "
            "'pyarrow', 'numpy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _error_classes_defined_in_src(extra: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    """Class name -> the files defining it, for every class in src (and ``extra`` files) whose
    bases lead (by name) to ParallelRunError. Read from the source, so no module needs
    importing (Ray, FastAPI)."""
    bases: dict[str, set[str]] = {}
    where: dict[str, list[str]] = {}
    for path in [*SRC.rglob("*.py"), *extra]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, (ast.Name, ast.Attribute))}
                bases.setdefault(node.name, set()).update(names)
                shown = path.relative_to(SRC) if path.is_relative_to(SRC) else path.name
                where.setdefault(node.name, []).append(str(shown))
    tree = {"ParallelRunError"}
    grew = True
    while grew:
        found = {name for name, parents in bases.items() if parents & tree}
        grew = not found <= tree
        tree |= found
    return {name: where[name] for name in tree}


def test_errors_form_one_tree():
    defined = _error_classes_defined_in_src()
    assert len(defined) >= 15   # the scan sees the tree (not an empty set that passes)
    elsewhere = {name: files for name, files in defined.items() if files != ["errors.py"]}
    assert elsewhere == {}, "every ParallelRunError subclass is defined in errors.py"
    in_errors = {name for name, value in vars(errors).items()
                 if inspect.isclass(value) and issubclass(value, errors.ParallelRunError)}
    assert in_errors == set(defined)
    for name in in_errors:
        assert getattr(parallelrun, name) is getattr(errors, name), f"{name} is not exported"
        assert re.search(rf"[─ ]{name}\b", errors.__doc__), f"{name} is not in the tree docstring"
    assert issubclass(parallelrun.StorageError, OSError)
    assert issubclass(parallelrun.DataError, ValueError)
    assert issubclass(parallelrun.ConfigurationError, ValueError)
    assert issubclass(parallelrun.UnknownNameError, KeyError)
    assert issubclass(parallelrun.RunTimeoutError, TimeoutError)


def test_errors_keep_their_old_import_paths():
    from parallelrun.compute import ComputeTargetException
    from parallelrun.pipeline.yaml_job import JobSpecError
    from parallelrun.script import BadResultError
    from parallelrun.workspace.models import UnsafeArchiveError
    from parallelrun.workspace.workspace import UnknownNameError

    assert (JobSpecError, BadResultError, ComputeTargetException, UnknownNameError,
            UnsafeArchiveError) == (errors.JobSpecError, errors.BadResultError,
                                    errors.ComputeTargetException, errors.UnknownNameError,
                                    errors.UnsafeArchiveError)


def test_an_error_class_defined_outside_errors_py_is_found(tmp_path):
    # the tree check must be able to fail: a subclass of a subclass, in another module
    stray = tmp_path / "_stray_error_for_test.py"
    stray.write_text("from parallelrun.errors import DataError\n\n\n"
                     "class StrayError(DataError):\n    pass\n\n\n"
                     "class Deeper(StrayError):\n    pass\n", encoding="utf-8")
    defined = _error_classes_defined_in_src(extra=(stray,))
    assert defined["StrayError"] == ["_stray_error_for_test.py"]
    assert defined["Deeper"] == ["_stray_error_for_test.py"]
