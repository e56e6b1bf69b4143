"""Credentials belong to a datastore, not to a container name: two Azurite accounts each hold a
container of the same name, with different files at the same paths, and every way of reading a
datastore's data reads its own account's files with its own credentials."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from parallelrun import Dataset, Datastore, StorageError, Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


@pytest.fixture
def twin_stores(ws, azurite):
    """Datastores ``first`` and ``second``: container ``shared`` on each of two accounts, each
    holding ``labels/en.txt`` and ``labels/fr.txt`` that name the account."""
    container = azurite.new_container("shared")
    second = azurite.second_account()
    second.filesystem().mkdir(container)
    stores = {}
    for name, account in (("first", azurite), ("second", second)):
        account.filesystem().pipe({f"{container}/labels/{lang}.txt": f"{name} {lang}".encode()
                                   for lang in ("en", "fr")})
        stores[name] = Datastore.register_azure_blob_container(
            ws, datastore_name=name, container_name=container, account_name=account.account_name,
            account_key=account.account_key, account_url=account.account_url)
    # reading the rows again, second last: a registry keyed by container would now lend the
    # second account's credentials to every az://<container>/ URL
    first, second_store = Datastore.get(ws, "first"), Datastore.get(ws, "second")
    return container, first, second_store


def _texts(folder):
    return {name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}


def test_each_datastore_downloads_its_own_accounts_files(twin_stores, tmp_path):
    container, first, second = twin_stores
    assert first.path("labels/").url == second.path("labels/").url == f"az://{container}/labels/"
    for store in (first, second):
        dataset = Dataset.File.from_files(path=store.path("labels/"))
        files = dataset.download(tmp_path / store.name)
        assert sorted(open(f).read() for f in files) == [f"{store.name} en", f"{store.name} fr"]


def test_each_datastore_mounts_its_own_accounts_files(twin_stores):
    _, first, second = twin_stores
    for store in (first, second):
        with Dataset.File.from_files(path=store.path("labels/*.txt")).mount() as mounted:
            assert _texts(mounted.mount_point) == {"en.txt": f"{store.name} en",
                                                   "fr.txt": f"{store.name} fr"}


def test_a_registered_dataset_reads_its_own_datastores_account(twin_stores, ws, tmp_path):
    _, first, second = twin_stores
    Dataset.File.from_files(path=first.path("labels/")).register(ws, "first_labels")
    Dataset.File.from_files(path=second.path("labels/")).register(ws, "second_labels")
    datasets = {name: Dataset.get_by_name(ws, f"{name}_labels") for name in ("first", "second")}
    for name, dataset in datasets.items():
        files = dataset.download(tmp_path / name)
        assert sorted(open(f).read() for f in files) == [f"{name} en", f"{name} fr"]


def test_a_plain_url_under_two_accounts_is_refused_naming_both_datastores(twin_stores):
    container, _, second = twin_stores
    with pytest.raises(StorageError) as caught:
        list(Dataset.File.from_files(path=f"az://{container}/labels/", validate=False).iter_files())
    message = str(caught.value)
    assert "'first'" in message and "'second'" in message
    assert "azureml://datastores/first/paths/labels/" in message
    # once one of them is gone the URL is that of the other, read with its credentials
    second.unregister()
    dataset = Dataset.File.from_files(path=f"az://{container}/labels/")
    assert [url.rsplit("/", 1)[-1] for url in dataset.iter_files()] == ["en.txt", "fr.txt"]


def test_parallelrun_run_reads_a_plain_url_with_the_one_datastore_holding_it(twin_stores, ws,
                                                                             make_script, tmp_path):
    container, _, second = twin_stores
    make_script("""
        def init(): pass
        def run(mini_batch):
            return [open(path).read() for path in mini_batch]
    """)

    def run_cli():
        return subprocess.run(
            [sys.executable, "-m", "parallelrun.cli.__main__", "run", "--source-directory",
             "scripts", "--entry-script", "score.py", "--input", f"az://{container}/labels/",
             "--output", "out", "--workspace", str(ws.path), "--quiet"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120)

    refused = run_cli()
    assert refused.returncode == 2
    assert "datastore 'first'" in refused.stderr and "datastore 'second'" in refused.stderr
    second.unregister()
    result = run_cli()
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_text().splitlines()
    assert sorted(rows) == ["first en", "first fr"]
