"""The ``mlflow`` and ``mltable`` stand-ins that entry scripts and command nodes import, each run
in a fresh Python whose path holds the stand-ins as workers' do, and each stepping aside for a
real package of that name installed beside them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from parallelrun import compat


def python(code: str, cwd: Path, *extra_path: Path) -> str:
    """Run ``code`` with the stand-ins on the path (after ``extra_path``); its stdout."""
    paths = [str(p) for p in extra_path] + [compat.MODULES_DIR]
    prelude = f"import sys; sys.path[1:1] = {paths!r}\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_sklearn_model_saved_as_mlflow_does_loads_and_predicts(tmp_path):
    out = python("""
        import os, pickle, yaml, numpy as np
        import mlflow
        from sklearn.linear_model import LinearRegression
        x = np.array([[i, (i * 7) % 5] for i in range(10)], dtype=float)
        model = LinearRegression().fit(x, x @ [2.0, 3.0] + 1)
        mlflow.autolog()                                  # accepted: no tracking server
        os.makedirs("m")                                  # empty folders are fine, as in MLflow
        mlflow.sklearn.save_model(model, "m")
        try:
            mlflow.sklearn.save_model(model, "m")
        except OSError as exc:
            print("again:", exc)
        meta = yaml.safe_load(open("m/MLmodel"))
        print(sorted(meta["flavors"]), meta["flavors"]["sklearn"]["serialization_format"])
        from mlflow.sklearn import load_model
        print(load_model("m").predict([[1.0, 1.0]]))
        loaded = mlflow.pyfunc.load_model("file://" + os.path.abspath("m"))
        print(loaded.predict(np.array([[2.0, 0.0]])), type(loaded.get_raw_model()).__name__)
        print(mlflow.models.Model.load("m").flavors["python_function"]["loader_module"])
        """, tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("again: Path '") and "already exists and is not empty" in lines[0]
    assert lines[1] == "['python_function', 'sklearn'] cloudpickle"
    assert lines[2] == "[6.]" and lines[3] == "[5.] LinearRegression"
    assert lines[4] == "mlflow.sklearn"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "MLmodel", "conda.yaml", "model.pkl", "python_env.yaml", "requirements.txt"]


def test_mlflow_names_the_stand_in_lacks_say_how_to_get_mlflow(tmp_path):
    out = python("""
        import mlflow
        try:
            mlflow.log_model
        except ImportError as exc:
            print(exc)
        try:
            mlflow.pyfunc.load_model("models:/iris/1")
        except OSError as exc:
            print(exc)
        """, tmp_path)
    first, second = out.splitlines()
    assert "mlflow.log_model is not provided by parallelrun's stand-in for mlflow" in first
    assert "Install mlflow in the workers' environment" in first
    assert "'models:/iris/1'" in second and "local model folders" in second


def test_an_installed_package_is_used_instead_of_the_stand_in(tmp_path):
    for name in ("mlflow", "mltable"):
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text("REAL = True\n")
        (tmp_path / "site" / name / "sklearn.py").write_text("REAL_SUBMODULE = True\n")
    # installed packages come after the stand-ins on a worker's path: they still win
    out = python("""
        import sys
        sys.path.append(sys.path.pop(1))
        import mlflow, mltable, mlflow.sklearn
        print(mlflow.REAL, mltable.REAL, mlflow.sklearn.REAL_SUBMODULE, mlflow.__file__)
        """, tmp_path, tmp_path / "site")
    assert out.split()[:3] == ["True", "True", "True"]
    assert out.split()[3] == str(tmp_path / "site" / "mlflow" / "__init__.py")


def test_mltable_loads_transforms_and_saves_tables(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,a\n2,b\n3,c\n4,d\n")
    (tmp_path / "MLTable").write_text(
        "paths:\n  - file: ./data/a.csv\ntransformations:\n  - read_delimited:\n"
        "      delimiter: ','\n      header: all_files_same_headers\n")
    out = python("""
        import mltable
        from mltable import DataType
        tbl = mltable.load(".")
        print(tbl.paths)
        print(tbl.skip(1).take(2).to_pandas_dataframe().to_dict("list"))
        print(tbl.filter('col("x") > 2').keep_columns(["y"]).to_pandas_dataframe().to_dict("list"))
        print(tbl.convert_column_types({"x": DataType.to_float()}).to_pandas_dataframe().x.dtype)
        made = mltable.from_delimited_files([{"file": "./data/a.csv"}]).drop_columns("y")
        made.save("copy")
        print(mltable.load("copy").to_pandas_dataframe().to_dict("list"))
        print(mltable.from_paths([{"folder": "./data"}]).to_pandas_dataframe().Path.str[-5:].tolist())
        """, tmp_path)
    lines = out.splitlines()
    assert lines[0] == "[{'file': './data/a.csv'}]"
    assert lines[1] == "{'x': [2, 3], 'y': ['b', 'c']}"
    assert lines[2] == "{'y': ['c', 'd']}"
    assert lines[3] == "float64"
    assert lines[4] == "{'x': [1, 2, 3, 4]}"
    assert lines[5] == "['a.csv']"
    # the saved MLTable points at the data from its own folder
    assert "file: ../data/a.csv" in (tmp_path / "copy" / "MLTable").read_text()
