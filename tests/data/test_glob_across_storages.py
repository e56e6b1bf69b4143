"""One glob rule on every storage: the same pattern over the same tree names the same files on
a local folder, in Azurite (``az://``) and in moto's S3 (``s3://``), through datastore paths as a
user gives them. Each case below was a place where the listings disagreed before
``data/globbing.py`` owned the rule; the module's docstring says which rule won."""

from __future__ import annotations

import pytest

from parallelrun import DataError, Dataset, Datastore, Workspace

# names chosen where orders and rules can differ: "a" / "a-b" / "a.txt" sort differently when a
# folder's name carries a trailing '/', hidden names, the job marker, Spark's bookkeeping files,
# a name holding glob characters
TREE = {
    "b.txt": "b", "a.txt": "a", "a/z.png": "z", "a/y.txt": "y", "a-b/x.txt": "x",
    "a/deep/w.png": "w", ".hidden.txt": "h", "a/.cache/v.png": "v", "img/1.png": "1",
    "img/10.png": "10", "img/2.png": "2", "lit/[1].png": "l", "lit/1.png": "m",
    "only-marker/.parallelrun": "{}", "sub/.parallelrun": "{}", "sub/k.txt": "k",
    "table/_SUCCESS": "", "table/.part-0.csv.crc": "crc", "table/part-0.csv": "n\n1\n2\n",
    "table/part-1.csv": "n\n3\n", "table/_tmp/part-9.csv": "n\n9\n",
}
KINDS = ["local", "azure", "s3"]


@pytest.fixture(scope="module")
def stores(azurite, moto_s3, tmp_path_factory) -> dict:
    """The tree on three datastores of one workspace: kind -> Datastore."""
    root = tmp_path_factory.mktemp("glob-stores")
    local = root / "local"
    for rel, text in TREE.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_text(text)
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/{rel}": text.encode() for rel, text in TREE.items()})
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()
    for rel, text in TREE.items():
        client.put_object(Bucket=bucket, Key=rel, Body=text.encode())
    ws = Workspace.create("glob", path=root / "ws")
    return {
        "local": Datastore.register_local(ws, "tree_local", local),
        "azure": Datastore.register_azure_blob_container(
            ws, "tree_blob", container, connection_string=azurite.connection_string),
        "s3": Datastore.register_s3_bucket(
            ws, "tree_s3", bucket, endpoint_url=moto_s3.endpoint_url,
            access_key_id=moto_s3.access_key_id, secret_access_key=moto_s3.secret_access_key),
    }


def listed(store, pattern: str) -> list[str]:
    """The files ``pattern`` names on ``store``, relative to the store's root, in listing order."""
    files = Dataset.File.from_files(store.path(pattern), validate=False).iter_files()
    root = str(store.path("")).rstrip("/")
    out = []
    for f in files:
        f = str(f)
        out.append(f[f.index(root.split("://", 1)[-1]) + len(root.split("://", 1)[-1]):].lstrip("/"))
    return out


@pytest.mark.parametrize("pattern, expected", [
    # a folder: every file below, hidden ones included, the job marker never; folders sorted by
    # name (an 'a' folder before 'a-b' and 'a.txt', on every storage)
    ("", [".hidden.txt", "a/.cache/v.png", "a/deep/w.png", "a/y.txt", "a/z.png", "a-b/x.txt", "a.txt"]),
    ("a/", ["a/.cache/v.png", "a/deep/w.png", "a/y.txt", "a/z.png"]),
    ("a", ["a/.cache/v.png", "a/deep/w.png", "a/y.txt", "a/z.png"]),
    ("*.txt", ["a.txt", "b.txt"]),
    (".*", [".hidden.txt"]),
    ("a/*", ["a/y.txt", "a/z.png"]),
    ("a/*/", ["a/y.txt", "a/z.png"]),
    ("*/*.png", ["a/z.png", "img/1.png", "img/10.png", "img/2.png", "lit/1.png", "lit/[1].png"]),
    ("**/*.png", ["a/deep/w.png", "a/z.png", "img/1.png", "img/10.png", "img/2.png",
                  "lit/1.png", "lit/[1].png"]),
    ("a/**", ["a/.cache/v.png", "a/deep/w.png", "a/y.txt", "a/z.png"]),
    ("img/?.png", ["img/1.png", "img/2.png"]),
    ("img/[12]*.png", ["img/1.png", "img/10.png", "img/2.png"]),
    ("img/[!1]*", ["img/2.png"]),
    # glob characters are always a pattern: '[1].png' is the name '1.png'; '[[]' names a '['
    ("lit/[1].png", ["lit/1.png"]),
    ("lit/[[]1].png", ["lit/[1].png"]),
    ("sub/*", ["sub/k.txt"]),
    ("sub/.*", []),
    # before: a remote path was not normalised as a local one is, and listed nothing (or the
    # storage refused the request)
    ("a//y.txt", ["a/y.txt"]),
    ("a/./y.txt", ["a/y.txt"]),
    ("a/deep/../y.txt", ["a/y.txt"]),
    ("img/./*.png", ["img/1.png", "img/10.png", "img/2.png"]),
])
def test_a_pattern_names_the_same_files_on_every_storage(stores, pattern, expected):
    if pattern == "":
        # the whole store is too much to spell out: the head of it is the point
        for kind in KINDS:
            assert listed(stores[kind], "")[:len(expected)] == expected, kind
        return
    for kind in KINDS:
        assert listed(stores[kind], pattern) == expected, kind


def test_a_folder_holding_only_the_job_marker_matches_nothing_on_every_storage(stores):
    # before: a local '.*' said the folder had a file (the marker) and planning then found
    # none; a local marker named outright was listed, a remote one was not
    for kind in KINDS:
        for pattern in ("only-marker/.*", "only-marker/.parallelrun", "only-marker/"):
            with pytest.raises(DataError, match="matched no files"):
                Dataset.File.from_files(stores[kind].path(pattern))


def test_a_remote_path_may_not_climb_above_its_container():
    with pytest.raises(DataError, match=r"'c/\.\./other/x.csv' goes above its container"):
        Dataset.File.from_files("az://c/../other/x.csv", validate=False).iter_files().__next__()


def test_a_table_folder_skips_bookkeeping_files_on_every_storage(stores):
    # before: a local folder left out _SUCCESS and .crc files (as pyarrow.dataset does) while an
    # az:// or s3:// folder read them as data
    for kind in KINDS:
        ds = Dataset.Tabular.from_delimited_files(stores[kind].path("table/"))
        frame = ds.to_pandas_dataframe()
        assert sorted(frame["n"]) == [1, 2, 3, 9], kind
        # a file named outright is read whatever its name
        named = Dataset.Tabular.from_delimited_files(stores[kind].path("table/_tmp/part-9.csv"))
        assert list(named.to_pandas_dataframe()["n"]) == [9], kind
