"""Datastores over Azurite (Azure Blob), moto (S3) and local folders: registration, credentials
(stored, from the environment, SAS, anonymous), secrets kept out of every output, clear errors."""

from __future__ import annotations

import datetime
import sqlite3

import pytest
from click.testing import CliRunner

from parallelrun import Dataset, Datastore, StorageError, Workspace, WorkspaceError
from parallelrun.cli import main as cli


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


def _blob(ws, azurite, container, name="blob", **credentials):
    credentials = credentials or {"account_key": azurite.account_key}
    return Datastore.register_azure_blob_container(
        ws, datastore_name=name, container_name=container, account_name=azurite.account_name,
        endpoint=f"127.0.0.1:{azurite.port}", protocol="http", overwrite=True, **credentials)


def _files(datastore, pattern):
    return [url.rsplit("/", 1)[-1] for url in
            Dataset.File.from_files(path=datastore.path(pattern)).iter_files()]


def test_azure_blob_with_an_account_key_lists_files_and_never_shows_the_key(ws, azurite):
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/mnist/{i}.png": b"x" * i for i in range(3)})
    blob = _blob(ws, azurite, container, "mnist_datastore")
    assert blob.path("mnist/").url == f"az://{container}/mnist/"
    assert _files(blob, "mnist/") == ["0.png", "1.png", "2.png"]
    assert _files(blob, "mnist/*.png") == ["0.png", "1.png", "2.png"]
    again = Datastore.get(ws, "mnist_datastore")
    assert again.container_name == container and again.datastore_type == "AzureBlob"
    key = azurite.account_key
    shown = [repr(blob), str(blob.describe()), repr(blob.path("mnist/")), str(blob.path("x")),
             repr(ws.datastores)]
    result = CliRunner().invoke(cli, ["datastore", "list", "--workspace", ws.path])
    shown.append(result.output)
    result = CliRunner().invoke(cli, ["datastore", "show", "mnist_datastore", "--json",
                                      "--workspace", ws.path])
    shown.append(result.output)
    assert all(key not in text and key[:20] not in text for text in shown)
    assert blob.describe()["credentials"] == {"account_key": "stored"}
    # stored only in the secrets table of the private catalog, never beside the datastore record
    db = sqlite3.connect(ws.catalog.path)
    try:
        assert key not in str(db.execute("SELECT * FROM datastores").fetchall())
        assert db.execute("SELECT value FROM secrets WHERE name = 'account_key'").fetchone()[0] == key
    finally:
        db.close()


def test_a_secret_from_an_environment_variable_is_read_at_use_and_never_stored(ws, azurite,
                                                                               monkeypatch):
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/a.txt": b"1"})
    monkeypatch.setenv("TEST_AZ_KEY", azurite.account_key)
    blob = Datastore.register_azure_blob_container(
        ws, "envstore", container, azurite.account_name, account_url=azurite.account_url,
        account_key_env="TEST_AZ_KEY")
    assert blob.describe()["credentials"] == {"account_key": "from $TEST_AZ_KEY"}
    assert _files(blob, "") == ["a.txt"]
    assert not sqlite3.connect(ws.catalog.path).execute("SELECT * FROM secrets").fetchall()
    monkeypatch.delenv("TEST_AZ_KEY")
    with pytest.raises(StorageError, match="environment variable 'TEST_AZ_KEY', which is not set"):
        _files(Datastore.get(ws, "envstore"), "")


def test_sas_token_and_anonymous_public_container(ws, azurite):
    from azure.storage.blob import (BlobServiceClient, ContainerSasPermissions,
                                    generate_container_sas)

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    private = azurite.new_container()
    service.get_container_client(private).upload_blob("p/a.txt", b"1")
    sas = generate_container_sas(
        azurite.account_name, private, account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    with_sas = _blob(ws, azurite, private, "sas", sas_token=sas)
    assert with_sas.describe()["credentials"] == {"sas_token": "stored"}
    assert _files(with_sas, "p/") == ["a.txt"]
    # a tampered SAS is refused, and its signature appears in no message or traceback
    bad_sas = sas.replace("sig=", "sig=AAAA")
    tampered = Datastore.register_azure_blob_container(
        ws, "tampered", private, azurite.account_name, sas_token=bad_sas,
        account_url=azurite.account_url, skip_validation=True)
    with pytest.raises(StorageError, match="refused the credentials") as refused:
        Dataset.File.from_files(path=tampered.path("p/"))
    import traceback

    printed = "".join(traceback.format_exception(refused.value))
    signature = bad_sas.split("sig=")[1].split("&")[0]
    assert signature not in printed and "AAAA" not in printed
    public = "pub" + private[1:]
    service.create_container(public, public_access="container")
    service.get_container_client(public).upload_blob("x/b.txt", b"2")
    anonymous = Datastore.register_azure_blob_container(
        ws, "public", public, azurite.account_name, account_url=azurite.account_url)
    assert anonymous.describe()["credentials"] == {"anonymous": "public container"}
    assert _files(anonymous, "x/*.txt") == ["b.txt"]


def test_missing_container_and_wrong_key_are_clear_errors(ws, azurite):
    existing = azurite.new_container()
    with pytest.raises(StorageError, match=r"container 'nosuchcontainer' .* does not exist "
                                           rf"\(containers there: .*{existing}"):
        _blob(ws, azurite, "nosuchcontainer")
    with pytest.raises(StorageError, match="refused the credentials"):
        _blob(ws, azurite, existing, account_key="A" * 86 + "==")
    # registered without validation, the same errors come when the data is listed
    wrong = Datastore.register_azure_blob_container(
        ws, "wrong", existing, azurite.account_name, account_key="A" * 86 + "==",
        account_url=azurite.account_url, skip_validation=True)
    with pytest.raises(StorageError, match="refused the credentials"):
        Dataset.File.from_files(path=wrong.path("x/"))
    unchecked = Datastore.register_azure_blob_container(
        ws, "unchecked", "nosuchcontainer", azurite.account_name, account_key=azurite.account_key,
        account_url=azurite.account_url, skip_validation=True)
    with pytest.raises(StorageError, match="container 'nosuchcontainer'"):
        Dataset.File.from_files(path=unchecked.path("x/"))


def test_create_if_not_exists_makes_the_container_and_names_must_be_unique(ws, azurite):
    name = "made" + azurite.new_container()[1:]
    azurite.filesystem().rm(name.replace("made", "c", 1), recursive=True)
    store = Datastore.register_azure_blob_container(
        ws, "made", name, azurite.account_name, account_key=azurite.account_key,
        account_url=azurite.account_url, create_if_not_exists=True)
    assert azurite.filesystem().exists(name)
    with pytest.raises(WorkspaceError, match="already registered.*overwrite=True"):
        Datastore.register_azure_blob_container(ws, "made", name, azurite.account_name,
                                                account_key=azurite.account_key,
                                                account_url=azurite.account_url)
    assert store.root_url == f"az://{name}/"


def test_s3_bucket_on_an_s3_compatible_endpoint(ws, moto_s3, monkeypatch):
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()
    for key in ("raw/b.txt", "raw/a.txt", "raw/sub/c.txt", "other/d.txt"):
        client.put_object(Bucket=bucket, Key=key, Body=b"data")
    monkeypatch.setenv("TEST_S3_SECRET", moto_s3.secret_access_key)
    s3 = Datastore.register_s3_bucket(ws, "raw", bucket=bucket, endpoint_url=moto_s3.endpoint_url,
                                      access_key_id=moto_s3.access_key_id,
                                      secret_access_key_env="TEST_S3_SECRET")
    assert s3.path("raw/").url == f"s3://{bucket}/raw/"
    assert _files(s3, "raw/") == ["a.txt", "b.txt", "c.txt"]
    assert _files(s3, "raw/*.txt") == ["a.txt", "b.txt"]
    assert _files(s3, "**/*.txt") == ["d.txt", "a.txt", "b.txt", "c.txt"]
    assert s3.describe()["credentials"] == {"access_key_id": "stored",
                                            "secret_access_key": "from $TEST_S3_SECRET"}
    assert moto_s3.secret_access_key not in repr(s3) + str(s3.describe())


def test_missing_bucket_and_wrong_s3_keys_are_clear_errors(ws, moto_s3):
    bucket = moto_s3.new_bucket()
    common = dict(endpoint_url=moto_s3.endpoint_url, access_key_id=moto_s3.access_key_id,
                  overwrite=True)
    with pytest.raises(StorageError, match=rf"bucket 'missing-bucket' .* does not exist \(buckets "
                                           rf"there: .*{bucket}"):
        Datastore.register_s3_bucket(ws, "s3", bucket="missing-bucket",
                                     secret_access_key=moto_s3.secret_access_key, **common)
    with pytest.raises(StorageError, match="refused the credentials"):
        Datastore.register_s3_bucket(ws, "s3", bucket=bucket, secret_access_key="wrong", **common)


def test_local_datastores_and_unknown_names(ws, tmp_path):
    with pytest.raises(StorageError, match="does not exist; create it or pass create_if_not_exists"):
        Datastore.register_local(ws, "scans", tmp_path / "scans")
    scans = Datastore.register_local(ws, "scans", tmp_path / "scans", create_if_not_exists=True)
    (tmp_path / "scans" / "a.txt").write_text("1")
    assert _files(scans, "*.txt") == ["a.txt"]
    with pytest.raises(KeyError, match="no datastore 'nope'.*registered: scans, workspaceblobstore"):
        Datastore.get(ws, "nope")
    with pytest.raises(WorkspaceError, match="not allowed"):
        Datastore.register_local(ws, "bad-name", tmp_path)


def test_upload_and_download_on_local_datastores(ws, tmp_path):
    source = tmp_path / "source"
    (source / "digits").mkdir(parents=True)
    for i in range(3):
        (source / "digits" / f"{i}.txt").write_text(str(i))
    for store in (ws.get_default_datastore(),
                  Datastore.register_local(ws, "scans", tmp_path / "scans",
                                           create_if_not_exists=True)):
        store.upload(source, target_path="batch1")
        assert sorted(_files(store, "batch1/digits/*.txt")) == ["0.txt", "1.txt", "2.txt"]
        with pytest.raises(StorageError, match="already holds files; pass overwrite=True"):
            store.upload(source, target_path="batch1")
        store.upload_files([source / "digits" / "0.txt"], relative_root=source,
                           target_path="batch2")
        with pytest.raises(StorageError, match="exists; pass overwrite=True"):
            store.upload_files([source / "digits" / "0.txt"], relative_root=source,
                               target_path="batch2")
        copy = tmp_path / f"copy-{store.name}"
        assert store.download(copy, prefix="batch1") == 3
        assert (copy / "digits" / "2.txt").read_text() == "2"
        _download_again_only_with_overwrite(store, "batch1", copy, "digits/2.txt")


def _download_again_only_with_overwrite(store, prefix, copy, changed):
    (copy / changed).write_text("changed here")
    with pytest.raises(StorageError, match=r"exists; pass overwrite=True"):
        store.download(copy, prefix=prefix)
    assert (copy / changed).read_text() == "changed here"   # refused before copying anything
    assert store.download(copy, prefix=prefix, overwrite=True) == 3
    assert (copy / changed).read_text() != "changed here"


def test_download_from_s3_and_azure_blob_refuses_to_replace_files_unless_told(
        ws, tmp_path, moto_s3, azurite):
    bucket = moto_s3.new_bucket()
    for key in ("raw/a.txt", "raw/sub/c.txt", "raw/b.txt", "other/d.txt"):
        moto_s3.client().put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3 = Datastore.register_s3_bucket(ws, "raw", bucket=bucket, endpoint_url=moto_s3.endpoint_url,
                                      access_key_id=moto_s3.access_key_id,
                                      secret_access_key=moto_s3.secret_access_key)
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/raw/{name}": name.encode()
                               for name in ("a.txt", "b.txt", "sub/c.txt")})
    for store in (s3, _blob(ws, azurite, container)):
        copy = tmp_path / f"copy-{store.name}"
        assert store.download(copy, prefix="raw") == 3
        assert (copy / "sub" / "c.txt").read_bytes().endswith(b"c.txt")
        _download_again_only_with_overwrite(store, "raw", copy, "sub/c.txt")
