"""Registered, versioned datasets: register / get_by_name / get_by_id, latest, fingerprints,
re-creation from the catalog (also in another process), concurrent registrations."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from parallelrun import DataError, Dataset, Datastore, Workspace, WorkspaceError
from parallelrun.workspace import datasets


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


def test_register_versions_and_get_them_back(ws, make_files):
    folder = make_files(4)
    ds = Dataset.File.from_files(path=str(folder / "*.txt"))
    first = ds.register(ws, "numbers", description="four numbers", tags={"kind": "text"})
    assert first.version == 1 and first.id
    # the same definition and data again: the same version, unless a new one is asked for
    assert ds.register(ws, "numbers").id == first.id
    second = ds.register(ws, "numbers", create_new_version=True)
    assert second.version == 2 and second.id != first.id
    latest = Dataset.get_by_name(ws, "numbers", version="latest")
    assert latest.version == 2 and latest.paths == ds.paths
    assert Dataset.get_by_name(ws, name="numbers", version=1).id == first.id
    assert Dataset.get_by_id(ws, first.id).registration["description"] == "four numbers"
    assert first.registration["tags"] == {"kind": "text"}
    assert [p.rsplit("/", 1)[-1] for p in latest.iter_files()] == [
        f"item_{i:04d}.txt" for i in range(4)]
    assert set(ws.datasets) == {"numbers"} and ws.datasets["numbers"].version == 2


def test_a_changed_definition_needs_create_new_version(ws, make_files):
    Dataset.File.from_files(str(make_files(2, "a"))).register(ws, "data")
    other = Dataset.File.from_files(str(make_files(2, "b")))
    with pytest.raises(WorkspaceError, match="already registered.*create_new_version=True"):
        other.register(ws, "data")
    assert other.register(ws, "data", create_new_version=True).version == 2


def test_unknown_names_versions_and_ids_name_what_exists(ws, make_files):
    Dataset.File.from_files(str(make_files(1))).register(ws, "alpha")
    Dataset.File.from_files(str(make_files(1, "z"))).register(ws, "beta")
    with pytest.raises(KeyError, match="no dataset 'gamma' in workspace 'ws'; registered: alpha, beta"):
        Dataset.get_by_name(ws, "gamma")
    with pytest.raises(KeyError, match="dataset 'alpha' has no version 3; versions: 1"):
        Dataset.get_by_name(ws, "alpha", version=3)
    with pytest.raises(KeyError, match="no dataset with id 'nope'.*alpha, beta"):
        Dataset.get_by_id(ws, "nope")
    with pytest.raises(DataError, match="matched no files"):
        Dataset.File.from_files(str(make_files(1) / "*.csv"))


def test_the_fingerprint_tells_when_the_files_of_a_version_changed(ws, make_files):
    folder = make_files(3)
    registered = Dataset.File.from_files(str(folder)).register(ws, "fp")
    info = registered.registration
    assert info["file_count"] == 3 and info["total_bytes"] == 3 and len(info["fingerprint"]) == 64
    assert datasets.verify(registered)
    (folder / "item_0001.txt").write_text("changed")
    assert not datasets.verify(Dataset.get_by_name(ws, "fp"))
    # a new version records the data as it is now
    again = Dataset.File.from_files(str(folder)).register(ws, "fp", create_new_version=True)
    assert again.registration["fingerprint"] != info["fingerprint"]
    assert datasets.verify(again)


def test_remote_datasets_are_stored_as_datastore_references_and_recreated_elsewhere(
        ws, azurite, tmp_path):
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/mnist/{i}.png": b"png" for i in range(5)})
    blob = Datastore.register_azure_blob_container(
        ws, datastore_name="mnist_datastore", container_name=container,
        account_name=azurite.account_name, account_key=azurite.account_key,
        account_url=azurite.account_url)
    ds = Dataset.File.from_files(path=blob.path("mnist/"), validate=False)
    ds = ds.register(ws, "mnist_sample_data", create_new_version=True)
    assert ds.registration["paths"] == [{"datastore": "mnist_datastore", "path": "mnist/"}]
    assert ds.registration["file_count"] == 5
    assert all(tag for tag in [e.tag for e in ds.file_entries()])  # etags of the blobs
    row = sqlite3.connect(ws.catalog.path).execute("SELECT record FROM datasets").fetchone()
    assert azurite.account_key not in row[0]
    # another process finds the dataset, and the datastore's credentials, from the workspace
    code = textwrap.dedent(f"""
        import os
        from parallelrun import Dataset, Workspace
        os.chdir({str(tmp_path / "ws")!r})
        ds = Dataset.get_by_name(Workspace.from_config(), "mnist_sample_data")
        print(ds.version, len(list(ds.iter_files())))
    """)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.split() == ["1", "5"], out.stderr
    # a plain URL under a registered datastore is stored as a reference too
    by_url = Dataset.File.from_files(f"az://{container}/mnist/*.png").register(ws, "by_url")
    assert by_url.registration["paths"] == [{"datastore": "mnist_datastore", "path": "mnist/*.png"}]


def test_named_inputs_of_registered_datasets(ws, make_files):
    ds = Dataset.File.from_files(str(make_files(2))).register(ws, "named")
    named = Dataset.get_by_name(ws, "named").as_named_input("scans")
    assert named.name == "scans" and named.version == 1


def test_a_tabular_dataset_registers_and_comes_back_with_its_options(ws, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a;b\n1;x\n2;y\n")
    ds = Dataset.Tabular.from_delimited_files(str(csv), separator=";")
    registered = ds.register(ws, "table")
    again = Dataset.get_by_name(ws, "table")
    assert again.kind == "tabular" and registered.registration["file_count"] == 1
    assert list(again.to_pandas_dataframe()["b"]) == ["x", "y"]


def test_processes_registering_at_once_get_distinct_versions(ws, make_files):
    folder = make_files(2)
    code = textwrap.dedent(f"""
        import json
        from parallelrun import Dataset, Model, Workspace
        ws = Workspace({ws.path!r})
        ds = Dataset.File.from_files({str(folder)!r})
        versions = [ds.register(ws, "shared", create_new_version=True).version for _ in range(3)]
        versions += [Model.register(ws, {str(folder)!r}, "shared-model").version for _ in range(3)]
        print(json.dumps(versions))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    dataset_versions = sorted(v for r in results for v in r[:3])
    model_versions = sorted(v for r in results for v in r[3:])
    assert dataset_versions == list(range(1, 13))
    assert model_versions == list(range(1, 13))
    rows = [r["version"] for r in datasets.list_versions(ws, "shared")]
    assert rows == list(range(1, 13))


def test_a_tabular_dataset_on_a_datastore_registers_and_reads_back(ws, azurite):
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/t/a.csv": b"id,v\n1,x\n2,y\n",
                               f"{container}/t/b.csv": b"id,v\n3,z\n"})
    blob = Datastore.register_azure_blob_container(
        ws, "tables", container, azurite.account_name, account_key=azurite.account_key,
        account_url=azurite.account_url)
    ds = Dataset.Tabular.from_delimited_files(path=blob.path("t/*.csv"))
    registered = ds.register(ws, "table_on_blob")
    assert registered.registration["paths"] == [{"datastore": "tables", "path": "t/*.csv"}]
    again = Dataset.get_by_name(ws, "table_on_blob")
    frame = again.to_pandas_dataframe()
    assert sorted(frame["v"]) == ["x", "y", "z"]
