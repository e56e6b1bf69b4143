"""Every registered storage kind keeps the same contract: the storage-kind conformance suite.

One suite, parametrized over ``parallelrun.workspace.storage_kinds.STORAGE_KINDS`` (a local
folder, Azure Blob, S3, and any kind added later), against real servers (Azurite and moto S3,
tests/fixtures/storage_servers.py); each kind gets a datastore from a factory in
:data:`STORAGES`, and a kind registered without one fails the suite. What must hold for every
kind: a datastore registers; a folder and single files upload, list by the same names and
download byte-identical; file and CSV datasets on ``(datastore, path)`` plan as their local
equivalents; a job writes its output there, every row once; a second job into that used output
is refused unless ``overwrite=True`` and deletes nothing of the user's; secrets never show in
``repr``/``str``/``describe()``, pickles or error messages; a wrong credential is a parallelrun
error naming the datastore, without the storage SDK's traceback.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from parallelrun import (
    ConfigurationError,
    Dataset,
    Datastore,
    ParallelRunConfig,
    ParallelRunError,
    StorageError,
    Workspace,
    run_job,
)
from parallelrun.workspace.storage_kinds import STORAGE_KINDS

#: a well-formed Azure account key (base64 of 64 bytes) that is not the account's
WRONG_AZURE_KEY = "A" * 86 + "=="
WRONG_S3_SECRET = "wrong-secret-access-key-0123456789abcdef"


@dataclasses.dataclass
class Storage:
    """A kind's storage for one test: how to register a datastore on it, and its secrets."""

    #: register(ws, name, wrong=False, skip_validation=False) -> Datastore; ``wrong`` registers
    #: it with a credential the storage refuses (only for kinds that take credentials)
    register: Callable[..., Datastore]
    #: every secret value the datastore is given: none may be shown anywhere
    secrets: tuple[str, ...] = ()
    takes_credentials: bool = True


def local_storage(request, tmp_path) -> Storage:
    root = tmp_path / "local-storage"

    def register(ws, name, wrong=False, skip_validation=False):
        assert not wrong, "a local folder takes no credentials"
        return Datastore.register_local(ws, name, root, create_if_not_exists=True,
                                        skip_validation=skip_validation)

    return Storage(register, takes_credentials=False)


def azure_blob_storage(request, tmp_path) -> Storage:
    azurite = request.getfixturevalue("azurite")
    container = azurite.new_container()

    def register(ws, name, wrong=False, skip_validation=False):
        return Datastore.register_azure_blob_container(
            ws, datastore_name=name, container_name=container, account_name=azurite.account_name,
            account_key=WRONG_AZURE_KEY if wrong else azurite.account_key,
            endpoint=f"127.0.0.1:{azurite.port}", protocol="http", skip_validation=skip_validation)

    return Storage(register, secrets=(azurite.account_key, WRONG_AZURE_KEY))


def s3_storage(request, tmp_path) -> Storage:
    moto_s3 = request.getfixturevalue("moto_s3")
    bucket = moto_s3.new_bucket()

    def register(ws, name, wrong=False, skip_validation=False):
        return Datastore.register_s3_bucket(
            ws, name, bucket=bucket, endpoint_url=moto_s3.endpoint_url,
            access_key_id=moto_s3.access_key_id,
            secret_access_key=WRONG_S3_SECRET if wrong else moto_s3.secret_access_key,
            skip_validation=skip_validation)

    return Storage(register, secrets=(moto_s3.secret_access_key, WRONG_S3_SECRET))


#: storage kind -> a factory of a fresh storage of that kind (pytest request, tmp_path -> Storage)
STORAGES: dict[str, Callable[..., Storage]] = {
    "local": local_storage, "azure_blob": azure_blob_storage, "s3": s3_storage}
#: the kinds whose storages take no credentials (their Storage says takes_credentials=False)
TAKE_NO_CREDENTIALS = {"local"}


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


@pytest.fixture(params=sorted(STORAGE_KINDS))
def storage(request, tmp_path) -> Storage:
    """Each registered storage kind, on a fresh folder, container or bucket."""
    factory = STORAGES.get(request.param)
    if factory is None:
        pytest.fail(f"storage kind {request.param!r} is in STORAGE_KINDS but has no storage to "
                    f"test against: add a factory for it to STORAGES in {Path(__file__).name}")
    return factory(request, tmp_path)


@pytest.fixture
def store(storage, ws) -> Datastore:
    return storage.register(ws, "conformance")


@pytest.fixture(params=[kind for kind in sorted(STORAGE_KINDS) if kind not in TAKE_NO_CREDENTIALS])
def credentialed(request, tmp_path) -> Storage:
    """Each registered storage kind that takes credentials (parametrized apart, so the suite
    skips nothing: a folder on disk simply has no such clause)."""
    factory = STORAGES.get(request.param)
    if factory is None:
        pytest.fail(f"storage kind {request.param!r} has no storage to test against: add a "
                    f"factory for it to STORAGES in {Path(__file__).name}")
    storage = factory(request, tmp_path)
    assert storage.takes_credentials, f"{request.param!r}: list it in TAKE_NO_CREDENTIALS"
    return storage


def make_source(folder: Path) -> Path:
    """A small tree: text, binary (every byte value) and nested files, and two CSV files."""
    (folder / "sub" / "deeper").mkdir(parents=True)
    for i in range(7):
        (folder / f"item_{i:02d}.txt").write_text(f"row {i}", encoding="utf-8")
    (folder / "every_byte.bin").write_bytes(bytes(range(256)) * 3)
    (folder / "sub" / "a.txt").write_text("nested", encoding="utf-8")
    (folder / "sub" / "deeper" / "b.txt").write_text("deeper", encoding="utf-8")
    return folder


def make_tables(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for f in range(2):
        rows = "".join(f"{f * 100 + r},value {f * 100 + r} with some padding\n" for r in range(30))
        (folder / f"part_{f}.csv").write_text("id,text\n" + rows, encoding="utf-8", newline="")
    return folder


def relative(urls, root: str) -> list[str]:
    urls, root = list(urls), root.rstrip("/\\")
    assert all(url.startswith(root) for url in urls), (root, urls)
    return [url[len(root):].replace("\\", "/").lstrip("/") for url in urls]


def local_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the contract -----------------------------------------------------------------------------
def test_every_storage_kind_has_a_storage_to_test():
    missing = sorted(set(STORAGE_KINDS) - set(STORAGES))
    assert not missing, (f"storage kinds without a storage: {missing}; add a factory for each "
                         f"to STORAGES in {Path(__file__).name}")


def test_it_registers_and_comes_back_by_name(store, ws):
    again = Datastore.get(ws, "conformance")
    assert (again.kind, again.root_url, again.location) == (store.kind, store.root_url,
                                                            store.location)
    assert again.datastore_type == STORAGE_KINDS[store.kind].datastore_type
    assert "conformance" in {d.name for d in Datastore.list(ws)}


def test_uploaded_files_list_by_their_names_and_download_byte_identical(store, tmp_path):
    source = make_source(tmp_path / "source")
    tree = local_tree(source)
    store.upload(source, target_path="tree")
    store.upload_files([source / "item_03.txt", source / "sub" / "deeper" / "b.txt"],
                       relative_root=source, target_path="some")

    listed = Dataset.File.from_files((store, "tree/")).iter_files()
    assert relative(listed, store.path("tree/").url) == sorted(tree)
    some = Dataset.File.from_files((store, "some/")).iter_files()
    assert relative(some, store.path("some/").url) == ["item_03.txt", "sub/deeper/b.txt"]

    assert store.download(tmp_path / "copy", prefix="tree") == len(tree)
    assert local_tree(tmp_path / "copy") == tree
    assert store.download(tmp_path / "copy-some", prefix="some") == 2
    assert local_tree(tmp_path / "copy-some") == {"item_03.txt": b"row 3",
                                                  "sub/deeper/b.txt": b"deeper"}


def test_datasets_on_it_plan_as_their_local_equivalents(store, tmp_path):
    source = make_source(tmp_path / "source")
    tables = make_tables(tmp_path / "tables")
    store.upload(source, target_path="files")
    store.upload(tables, target_path="tables")

    def file_plan(dataset, root):
        return [(mb.index, mb.items, mb.label, relative(mb.payload.names(), root))
                for mb in dataset.plan(3)]

    on_store = Dataset.File.from_files((store, "files/"))
    local = Dataset.File.from_files(str(source))
    assert file_plan(on_store, store.path("files/").url) == file_plan(local, str(source))

    def table_plan(dataset):
        return [(mb.index, mb.label, mb.payload.load().to_dict("list")) for mb in dataset.plan(512)]

    on_store = Dataset.Tabular.from_delimited_files((store, "tables/*.csv"))
    local = Dataset.Tabular.from_delimited_files(str(tables / "*.csv"))
    planned = table_plan(on_store)
    assert planned == table_plan(local)
    assert len(planned) > 2   # the files were cut, not read whole


SCRIPT = """
    def init(): pass
    def run(mini_batch):
        return [open(path, encoding="utf-8").read() for path in mini_batch]
"""


def output_of(store, tmp_path, name) -> dict[str, bytes]:
    """Everything under ``results/`` on the datastore, as the user would download it."""
    copy = tmp_path / name
    store.download(copy, prefix="results")
    return local_tree(copy)


def test_a_job_writes_every_row_once_into_it_and_a_used_output_needs_overwrite(
        store, make_script, tmp_path):
    store.upload(make_source(tmp_path / "source"), target_path="inputs")
    notes = tmp_path / "their_notes.txt"
    notes.write_text("the user's own file")
    store.upload_files([notes], target_path="results")
    config = ParallelRunConfig(source_directory=str(make_script(SCRIPT)), entry_script="score.py",
                               mini_batch_size=2, error_threshold=0, output_action="append_row",
                               process_count_per_node=2, compute_target="local")
    inputs = [Dataset.File.from_files((store, "inputs/*.txt"))]
    expected = sorted(f"row {i}" for i in range(7))

    first = run_job(config, inputs, store.path("results/"))
    assert first.status == "Finished", first.error
    written = output_of(store, tmp_path, "first")
    assert sorted(written["parallel_run_step.txt"].decode().splitlines()) == expected
    assert written["their_notes.txt"] == b"the user's own file"
    assert "logs/job_result.txt" in written

    with pytest.raises(ConfigurationError, match="overwrite"):
        run_job(config, inputs, store.path("results/"))
    assert output_of(store, tmp_path, "refused") == written   # nothing deleted or changed

    again = run_job(config, inputs, store.path("results/"), overwrite=True)
    assert again.status == "Finished", again.error
    rewritten = output_of(store, tmp_path, "again")
    assert sorted(rewritten["parallel_run_step.txt"].decode().splitlines()) == expected
    assert rewritten["their_notes.txt"] == b"the user's own file"


def test_secrets_never_show(credentialed, ws, tmp_path):
    store = credentialed.register(ws, "secretive")
    shown = [repr(store), str(store), str(store.describe()), repr(store.path("x/")),
             str(store.path("x/")), repr(Datastore.get(ws, "secretive")), repr(ws.datastores)]
    pickled = pickle.dumps(Datastore.get(ws, "secretive"))
    # the errors a user meets: nothing there, a refused overwrite, a wrong credential
    errors = []
    for attempt in (lambda: Dataset.File.from_files((store, "nothing/here/")),
                    lambda: store.upload_files([make_source(tmp_path / "s") / "item_00.txt"],
                                               target_path="once"),
                    lambda: store.upload_files([tmp_path / "s" / "item_00.txt"],
                                               target_path="once"),
                    lambda: credentialed.register(ws, "wrong", wrong=True),
                    lambda: Dataset.File.from_files(
                        (credentialed.register(ws, "unchecked", wrong=True, skip_validation=True),
                         "x/"))):
        try:
            attempt()
        except ParallelRunError as exc:
            errors.append(str(exc))
    assert len(errors) == 4, errors   # all but the first upload failed
    for secret in credentialed.secrets:
        for text in shown + errors:
            assert secret not in text and secret[:16] not in text, text
        assert secret.encode() not in pickled


def _refusal(attempt) -> ParallelRunError:
    with pytest.raises(ParallelRunError) as caught:
        attempt()
    error = caught.value
    # no storage SDK exception chained to it: its traceback would print the SDK's (and may
    # hold a signed URL)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return error


def test_a_wrong_credential_fails_registration_naming_the_datastore(credentialed, ws):
    error = _refusal(lambda: credentialed.register(ws, "wrong_key", wrong=True))
    assert isinstance(error, StorageError)
    assert "'wrong_key'" in str(error) and "credentials" in str(error)


def test_a_credential_gone_wrong_after_registration_fails_each_use_naming_the_datastore(
        credentialed, ws, tmp_path):
    # a key rotated since registration reads as one registered without validation
    store = credentialed.register(ws, "rotated_key", wrong=True, skip_validation=True)
    source = make_source(tmp_path / "source")
    for attempt in (lambda: Dataset.File.from_files((store, "x/")),
                    lambda: Dataset.Tabular.from_delimited_files((store, "x/*.csv")),
                    lambda: store.upload(source, target_path="up"),
                    lambda: store.upload_files([source / "item_00.txt"], target_path="up"),
                    lambda: store.download(tmp_path / "copy", prefix="x")):
        error = _refusal(attempt)
        assert "credentials" in str(error)
        assert "'rotated_key'" in str(error), str(error)
