"""A tabular MLTable registers as a data asset (``ml_client.data.create_or_update`` with
``type="mltable"``, or ``register``) and comes back as the same table, transformations and all."""

from __future__ import annotations

import pytest
import yaml

from parallelrun import Dataset, Workspace
from parallelrun.data.mltable import load_mltable
from parallelrun.ml import MLClient
from parallelrun.ml.entities import Data


@pytest.fixture
def iris(tmp_path):
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "iris.csv").write_text("sepal,species\n5.1,setosa\n7.0,versicolor\n6.3,virginica\n")
    (folder / "MLTable").write_text(yaml.safe_dump({
        "type": "mltable", "paths": [{"file": "./iris.csv"}],
        "transformations": [{"read_delimited": {"delimiter": ",",
                                                "header": "all_files_same_headers"}},
                            {"filter": "col(\"sepal\") > 6"}, {"keep_columns": ["species"]}]}))
    return folder


def test_an_mltable_data_asset_registers_and_reads_back_transformed(iris, tmp_path):
    ws = Workspace.create("ws", path=tmp_path / "ws")
    client = MLClient(path=ws.path)
    created = client.data.create_or_update(Data(name="iris", path=str(iris), type="mltable"))
    assert (created.name, created.version, created.type) == ("iris", "1", "mltable")
    assert client.data.get("iris").type == "mltable"
    table = Dataset.get_by_name(ws, "iris")
    assert table.to_pandas_dataframe().to_dict("list") == {"species": ["versicolor", "virginica"]}


def test_a_version_keeps_its_transformations_when_the_mltable_file_changes(iris, tmp_path):
    ws = Workspace.create("ws", path=tmp_path / "ws")
    load_mltable(iris).register(ws, "iris")
    (iris / "MLTable").write_text(yaml.safe_dump({
        "type": "mltable", "paths": [{"file": "./iris.csv"}],
        "transformations": [{"read_delimited": {"delimiter": ","}}]}))
    again = Dataset.get_by_name(ws, "iris", version=1)
    assert list(again.to_pandas_dataframe()["species"]) == ["versicolor", "virginica"]
