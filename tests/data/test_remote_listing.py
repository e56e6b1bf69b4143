"""Listing files on remote storage (Azurite, moto S3): the same deterministic order as local
listing, globs, folders, and clear errors for no match and missing containers/buckets."""

from __future__ import annotations

import os

import pytest

from parallelrun import DataError, Dataset, StorageError
from parallelrun.data.listing import iter_local_files
from parallelrun.data.remote import iter_remote_entries

TREE = ["b.txt", "a.txt", "a/z.png", "a/y.txt", "a-b/x.txt", "a/deep/w.png", ".hidden.txt",
        "img/1.png", "img/10.png", "img/2.png"]


@pytest.fixture(scope="module")
def blob_tree(azurite, tmp_path_factory):
    """The same small tree locally and in a container; returns (local folder, options, url)."""
    local = tmp_path_factory.mktemp("tree")
    container = azurite.new_container()
    files = {}
    for i, rel in enumerate(TREE):
        path = local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (i + 1))
        files[f"{container}/tree/{rel}"] = b"x" * (i + 1)
    azurite.filesystem().pipe(files)
    options = {"connection_string": azurite.connection_string}
    return local, options, f"az://{container}/tree"


def _rel(urls, root):
    return [u[len(root) + 1:] for u in urls]


def test_a_folder_lists_like_the_same_local_folder(blob_tree):
    local, options, url = blob_tree
    remote = [e.url for e in iter_remote_entries(url + "/", options)]
    expected = [os.path.relpath(p, local) for p in iter_local_files(str(local))]
    assert _rel(remote, url) == expected
    sizes = {e.url.rsplit("/", 1)[-1]: e.size for e in iter_remote_entries(url, options)}
    assert sizes["b.txt"] == 1 and sizes["1.png"] == 8


@pytest.mark.parametrize("pattern", ["*.txt", "a/*", "*/*.png", "**/*.png", "img/?.png",
                                     "a/**", "img/1*.png"])
def test_globs_match_what_the_same_local_glob_matches(blob_tree, pattern):
    local, options, url = blob_tree
    remote = _rel([e.url for e in iter_remote_entries(f"{url}/{pattern}", options)], url)
    expected = [os.path.relpath(p, local) for p in iter_local_files(str(local / pattern))]
    assert remote == expected and remote


def _register(url: str, options: dict, azurite) -> None:
    """What a datastore does: options for the container's URLs, at its place on the account."""
    from parallelrun.data.remote import register_storage_options

    container = url.split("://", 1)[1].split("/", 1)[0]
    register_storage_options(f"az://{container}", options,
                             location=f"{azurite.account_url}/{container}")


def test_a_single_file_and_a_file_dataset_over_several_remote_paths(blob_tree, azurite):
    _, options, url = blob_tree
    assert [e.url for e in iter_remote_entries(f"{url}/a.txt", options)] == [f"{url}/a.txt"]
    _register(url, options, azurite)
    ds = Dataset.File.from_files([f"{url}/img/", f"{url}/b.txt"])
    assert _rel(list(ds.iter_files()), url) == ["img/1.png", "img/10.png", "img/2.png", "b.txt"]
    mini_batches = list(ds.plan(2))
    assert [mb.items for mb in mini_batches] == [2, 1, 1]
    assert [mb.label for mb in mini_batches] == ["1.png", "2.png", "b.txt"]
    assert "connection_string" not in repr(mini_batches[0].payload)


def test_no_match_and_missing_container_are_clear_errors(blob_tree, azurite):
    _, options, url = blob_tree
    _register(url, options, azurite)
    with pytest.raises(DataError, match=rf"glob '{url}/\*.csv' matched no files"):
        Dataset.File.from_files(f"{url}/*.csv")
    lazy = Dataset.File.from_files(f"{url}/nothing/", validate=False)
    with pytest.raises(DataError, match="matched no files"):
        list(lazy.plan(1))
    _register("az://nosuchcontainer", options, azurite)
    with pytest.raises(StorageError, match="container 'nosuchcontainer' .* does not exist"):
        Dataset.File.from_files("az://nosuchcontainer/x/*.png")


def test_s3_folder_markers_are_not_files(moto_s3):
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()
    client.put_object(Bucket=bucket, Key="raw/", Body=b"")
    client.put_object(Bucket=bucket, Key="raw/sub/", Body=b"")
    client.put_object(Bucket=bucket, Key="raw/sub/a.csv", Body=b"1")
    client.put_object(Bucket=bucket, Key="raw/b.csv", Body=b"22")
    options = {"endpoint_url": moto_s3.endpoint_url, "key": moto_s3.access_key_id,
               "secret": moto_s3.secret_access_key}
    entries = list(iter_remote_entries(f"s3://{bucket}/raw/", options))
    assert [(e.url.split(bucket)[1], e.size) for e in entries] == [("/raw/b.csv", 2),
                                                                  ("/raw/sub/a.csv", 1)]
    assert all(e.tag for e in entries)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' .* does not exist"):
        list(iter_remote_entries("s3://no-such-bucket/raw/", options))
