"""Fixtures of the engine's tests: a datastore on each kind of remote storage."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from parallelrun import Datastore, Workspace


@pytest.fixture(params=["azure", "s3"])
def store(request, tmp_path):
    """(datastore, fsspec filesystem, its root) on Azurite or on moto's S3 server, named
    'data' in the workspace ``tmp_path/ws``, holding six files ``in/0.txt``... ``in/5.txt``."""
    ws = Workspace.create("ws", path=tmp_path / "ws")
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        store = Datastore.register_azure_blob_container(
            ws, datastore_name="data", container_name=azurite.new_container(),
            account_name=azurite.account_name, account_key=azurite.account_key,
            endpoint=f"127.0.0.1:{azurite.port}", protocol="http")
        fs, root = azurite.filesystem(), store.container_name
    else:
        import s3fs

        moto = request.getfixturevalue("moto_s3")
        bucket = moto.new_bucket()
        store = Datastore.register_s3_bucket(
            ws, "data", bucket=bucket, endpoint_url=moto.endpoint_url,
            access_key_id=moto.access_key_id, secret_access_key=moto.secret_access_key)
        fs = s3fs.S3FileSystem(key=moto.access_key_id, secret=moto.secret_access_key,
                               client_kwargs={"endpoint_url": moto.endpoint_url})
        root = bucket
    fs.pipe({f"{root}/in/{i}.txt": b"1" for i in range(6)})
    return store, fs, root


@pytest.fixture
def job_in_its_own_process(tmp_path):
    """Start ``run_job`` of ``score.py`` in ``scripts`` over the store's ``in/`` into its
    ``res/``, one file a mini-batch, in a process of its own (for a test to kill);
    ``environment`` are its variables and its workers'."""
    started = []

    def start(scripts, environment: dict[str, str], **process_env: str) -> subprocess.Popen:
        code = (f"import sys; sys.path[:0] = {sys.path!r}\n"
                "from parallelrun import Workspace, Dataset, ParallelRunConfig, run_job\n"
                f"ws = Workspace.get('ws', path={str(tmp_path / 'ws')!r})\n"
                "store = ws.datastores['data']\n"
                f"run_job(ParallelRunConfig(source_directory={str(scripts)!r}, "
                "entry_script='score.py', mini_batch_size=1, error_threshold=-1, "
                "output_action='append_row', process_count_per_node=1, "
                f"environment_variables={environment!r}), "
                "[Dataset.File.from_files(store.path('in/'))], store.path('res/'))\n")
        process = subprocess.Popen([sys.executable, "-c", code],
                                   env={**os.environ, **process_env})
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()
