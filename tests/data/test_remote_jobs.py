"""Whole jobs over remote storage: images read from Azurite with the output written back to it,
inputs from S3 (moto), background prefetch, a bounded and cleaned cache, outputs and logs
uploaded also when the job fails, a file that vanished failing only its mini-batch."""

from __future__ import annotations

import io
import os

import pytest

from parallelrun import (ConfigurationError, Dataset, Datastore, ParallelRunConfig,
                         ResumeMismatchError, Workspace, run_job)


# run() names each file it was given
NAMES_SCRIPT = """
    import os
    def init(): pass
    def run(mini_batch):
        return [os.path.basename(p) for p in mini_batch]
"""


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


@pytest.fixture
def blob(ws, azurite):
    return Datastore.register_azure_blob_container(
        ws, datastore_name="images", container_name=azurite.new_container(),
        account_name=azurite.account_name, account_key=azurite.account_key,
        endpoint=f"127.0.0.1:{azurite.port}", protocol="http")


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height), color=width).save(out, format="PNG")
    return out.getvalue()


def _config(scripts, **overrides):
    values = dict(source_directory=str(scripts), entry_script="score.py", mini_batch_size=3,
                  error_threshold=0, output_action="append_row", process_count_per_node=2)
    values.update(overrides)
    return ParallelRunConfig(**values)


def _all_files(folder) -> list[str]:
    return [os.path.join(r, f) for r, _, files in os.walk(folder) for f in files]


def test_a_job_reads_images_from_azurite_and_writes_parallel_run_step_txt_back(
        blob, azurite, make_script, tmp_path):
    fs = azurite.filesystem()
    fs.pipe({f"{blob.container_name}/mnist/digit_{i:02d}.png": _png(8 + i, 8) for i in range(14)})
    scripts = make_script("""
        import os
        from PIL import Image

        def init():
            pass

        def run(mini_batch):
            out = []
            for path in mini_batch:
                assert os.path.isfile(path), path          # a local file, as in the original
                with Image.open(path) as image:
                    out.append(f"{os.path.basename(path)} {image.size[0]}x{image.size[1]}")
            return out
    """)
    cache = tmp_path / "cache"
    config = _config(scripts, environment_variables={"PARALLELRUN_CACHE_DIR": str(cache)})
    ds = Dataset.File.from_files(path=blob.path("mnist/*.png"))
    result = run_job(config, [ds], blob.path("results/"))
    assert result.succeeded, result.error
    assert result.items_succeeded == 14 and result.minibatches_total == 5
    root = f"az://{blob.container_name}/results"
    assert result.output_file == f"{root}/parallel_run_step.txt"
    assert result.log_dir == f"{root}/logs"
    text = fs.cat(f"{blob.container_name}/results/parallel_run_step.txt").decode()
    assert sorted(text.splitlines()) == [f"digit_{i:02d}.png {8 + i}x8" for i in range(14)]
    logs = fs.find(f"{blob.container_name}/results/logs")
    assert any(p.endswith("job_result.txt") for p in logs)
    assert any(p.endswith("processed_mini-batches.csv") for p in logs)
    # no secret in any log, and the workers' download cache is gone
    for path in logs:
        assert azurite.account_key[:16] not in fs.cat(path).decode("utf-8", "replace")
    assert _all_files(cache) == []


def test_a_job_reads_its_inputs_from_s3(ws, moto_s3, make_script, tmp_path):
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()
    for i in range(7):
        client.put_object(Bucket=bucket, Key=f"raw/part_{i}.txt", Body=str(i * i).encode())
    s3 = Datastore.register_s3_bucket(ws, "raw", bucket=bucket, endpoint_url=moto_s3.endpoint_url,
                                      access_key_id=moto_s3.access_key_id,
                                      secret_access_key=moto_s3.secret_access_key)
    scripts = make_script("""
        import os

        def init():
            pass

        def run(mini_batch):
            return [f"{os.path.basename(p)}={open(p).read()}" for p in mini_batch]
    """)
    ds = Dataset.File.from_files(path=s3.path("raw/")).register(ws, "raw_parts")
    # the output goes to the workspace's default datastore (a local folder inside it)
    result = run_job(_config(scripts, mini_batch_size=2),
                     [Dataset.get_by_name(ws, "raw_parts").as_named_input("parts")],
                     ws.get_default_datastore().path("s3-results/"))
    assert result.succeeded, result.error
    assert ds.version == 1
    assert result.output_file.startswith(os.path.join(ws.path, ".parallelrun", "datastores"))
    assert sorted(open(result.output_file).read().splitlines()) == [
        f"part_{i}.txt={i * i}" for i in range(7)]


PREFETCH_PROBE = """
    import os, time

    def init():
        pass

    def run(mini_batch):
        time.sleep(0.4)   # "compute": the next mini-batch downloads meanwhile when prefetching
        mine = {os.path.basename(p) for p in mini_batch}
        cache = os.environ["PARALLELRUN_CACHE_DIR"]
        others = [f for _, _, files in os.walk(cache) for f in files if f not in mine]
        return [f"{sorted(mine)[0]} {len(others)}"]
"""


@pytest.mark.parametrize("prefetch", ["2", "0"])
def test_the_next_mini_batches_download_while_the_current_one_runs(
        blob, azurite, make_script, tmp_path, prefetch):
    azurite.filesystem().pipe({f"{blob.container_name}/p/{i:02d}.bin": b"x" * 100
                               for i in range(10)})
    scripts = make_script(PREFETCH_PROBE)
    cache = tmp_path / "cache"
    config = _config(scripts, mini_batch_size=2, process_count_per_node=1, error_threshold=-1,
                     environment_variables={"PARALLELRUN_CACHE_DIR": str(cache),
                                            "PARALLELRUN_PREFETCH": prefetch})
    result = run_job(config, [Dataset.File.from_files(blob.path("p/"))], tmp_path / "out")
    assert result.succeeded, result.error
    # each line: first file of the mini-batch, files of OTHER mini-batches in the cache meanwhile
    seen = dict(line.split() for line in open(result.output_file).read().splitlines())
    others = [int(seen[f"{i:02d}.bin"]) for i in range(0, 10, 2)]
    if prefetch == "0":
        assert others == [0, 0, 0, 0, 0]
    else:
        # every mini-batch but the last had the next one (2 files) fetched ahead, and the files
        # of the previous one were already deleted: at most 2 mini-batches ahead are held
        assert all(count >= 2 for count in others[:-1]), others
        assert all(count <= 4 for count in others), others
    assert _all_files(cache) == []


def test_caches_of_killed_workers_are_removed(blob, azurite, make_script, tmp_path):
    azurite.filesystem().pipe({f"{blob.container_name}/k/{i}.txt": b"1" for i in range(4)})
    marker = tmp_path / "died_once"
    scripts = make_script(f"""
        import os

        def init():
            pass

        def run(mini_batch):
            if not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                os._exit(3)   # killed with files in its cache: no clean-up of its own
            return [os.path.basename(p) for p in mini_batch]
    """)
    cache = tmp_path / "cache"
    config = _config(scripts, mini_batch_size=1, process_count_per_node=1,
                     environment_variables={"PARALLELRUN_CACHE_DIR": str(cache)})
    result = run_job(config, [Dataset.File.from_files(blob.path("k/"))], tmp_path / "out")
    assert result.succeeded and result.retries == 1, result.error
    assert sorted(open(result.output_file).read().split()) == ["0.txt", "1.txt", "2.txt", "3.txt"]
    assert os.listdir(cache) == []


def test_summary_only_outputs_and_the_logs_of_a_failed_job_reach_the_datastore(
        blob, azurite, make_script, tmp_path):
    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/in/{i}.txt": str(i).encode() for i in range(3)})
    scripts = make_script("""
        import os
        from parallelrun import EntryScript

        def init():
            pass

        def run(mini_batch):
            for path in mini_batch:
                if path.endswith("2.txt"):
                    raise ValueError("cannot score 2.txt")
                name = os.path.basename(path) + ".out"
                with open(os.path.join(EntryScript().output_dir, name), "w") as fh:
                    fh.write("scored")
            return mini_batch
    """)
    config = _config(scripts, mini_batch_size=1, process_count_per_node=1,
                     output_action="summary_only", run_max_try=1, error_threshold=0)
    result = run_job(config, [Dataset.File.from_files(blob.path("in/"))], blob.path("scored/"))
    assert result.status == "Failed" and "error_threshold" in result.error
    written = fs.find(f"{container}/scored")
    assert f"{container}/scored/0.txt.out" in written and f"{container}/scored/1.txt.out" in written
    error_log = fs.cat(f"{container}/scored/logs/user/error.txt").decode()
    assert "cannot score 2.txt" in error_log


def test_a_file_gone_after_planning_fails_only_its_mini_batch(blob, azurite, make_script,
                                                              tmp_path):
    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/v/{i}.txt": b"1" for i in range(4)})
    scripts = make_script(f"""
        import os
        import adlfs

        def init():
            pass

        def run(mini_batch):
            if os.path.basename(mini_batch[0]) == "0.txt":
                fs = adlfs.AzureBlobFileSystem(connection_string={azurite.connection_string!r})
                fs.rm("{container}/v/3.txt")
            return [os.path.basename(p) for p in mini_batch]
    """)
    config = _config(scripts, mini_batch_size=1, process_count_per_node=1, error_threshold=-1,
                     run_max_try=2,
                     environment_variables={"PARALLELRUN_PREFETCH": "0",
                                            "PARALLELRUN_CACHE_DIR": str(tmp_path / "cache")})
    result = run_job(config, [Dataset.File.from_files(blob.path("v/"))], tmp_path / "out")
    assert result.succeeded, result.error
    assert (result.items_succeeded, result.items_failed) == (3, 1)
    error_log = open(os.path.join(result.log_dir, "user", "error.txt")).read()
    assert "3.txt" in error_log and "StorageError" in error_log


def test_resume_continues_from_the_journal_uploaded_with_a_remote_output(blob, azurite,
                                                                         make_script):
    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/r/{i}.txt": b"1" for i in range(5)})
    scripts = make_script(NAMES_SCRIPT)
    config = _config(scripts, mini_batch_size=2, process_count_per_node=1)
    inputs = [Dataset.File.from_files(blob.path("r/"))]
    first = run_job(config, inputs, blob.path("res/"))
    assert first.succeeded and first.minibatches_succeeded == 3
    # a resumed job finds every mini-batch committed in the downloaded journal: nothing re-runs
    again = run_job(config, inputs, blob.path("res/"), resume=True)
    assert again.succeeded and again.minibatches_succeeded == 3
    rows = fs.cat(f"{container}/res/parallel_run_step.txt").decode().split()
    assert sorted(rows) == ["0.txt", "1.txt", "2.txt", "3.txt", "4.txt"]
    csv = fs.cat(f"{container}/res/logs/sys/job_report/processed_mini-batches.csv").decode()
    assert len(csv.strip().splitlines()) == 1 + 3  # header and the first run's three tries
    # a resume with other settings is refused, naming the journal where the user knows it
    with pytest.raises(ResumeMismatchError, match="mini_batch_size") as refused:
        run_job(_config(scripts, mini_batch_size=3), inputs, blob.path("res/"), resume=True)
    assert f"az://{container}/res/logs" in str(refused.value)
    assert "parallelrun-stage" not in str(refused.value)


def test_a_second_job_into_a_used_remote_output_is_refused_unless_overwrite(blob, azurite,
                                                                            make_script):
    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/used/in/{i}.txt": b"1" for i in range(4)})
    fs.pipe({f"{container}/used/res/their_notes.txt": b"the user's"})
    scripts = make_script(NAMES_SCRIPT)
    config = _config(scripts, mini_batch_size=2, process_count_per_node=1)
    inputs = [Dataset.File.from_files(blob.path("used/in/"))]
    assert run_job(config, inputs, blob.path("used/res/")).succeeded
    with pytest.raises(ConfigurationError, match="overwrite"):
        run_job(config, inputs, blob.path("used/res/"))
    fs.pipe({f"{container}/used/res/logs/sys/stale.txt": b"from the first job"})
    again = run_job(config, inputs, blob.path("used/res/"), overwrite=True)
    assert again.succeeded
    assert sorted(fs.cat(f"{container}/used/res/parallel_run_step.txt").decode().split()) == \
        ["0.txt", "1.txt", "2.txt", "3.txt"]
    assert fs.cat(f"{container}/used/res/their_notes.txt") == b"the user's"
    assert not fs.exists(f"{container}/used/res/logs/sys/stale.txt")


def test_a_remote_output_inside_the_remote_input_is_never_read_as_input(blob, azurite,
                                                                        make_script):
    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/d/{i}.txt": b"1" for i in range(5)})
    scripts = make_script(NAMES_SCRIPT)
    config = _config(scripts, mini_batch_size=2, process_count_per_node=1)
    inputs = [Dataset.File.from_files(blob.path("d/"))]
    assert run_job(config, inputs, blob.path("d/out/")).succeeded
    # the first job's results and logs are in the input's folder now: a resume, and a new job
    # into the same output, list the input without them
    again = run_job(config, inputs, blob.path("d/out/"), resume=True)
    assert again.succeeded and again.minibatches_succeeded == 3, again.error
    anew = run_job(config, inputs, blob.path("d/out/"), overwrite=True)
    assert anew.succeeded and anew.items_succeeded == 5, anew.error
    rows = fs.cat(f"{container}/d/out/parallel_run_step.txt").decode().split()
    assert sorted(rows) == ["0.txt", "1.txt", "2.txt", "3.txt", "4.txt"]


@pytest.mark.parametrize("log_dir", [None, "d/logs/"])
def test_a_remote_input_that_is_the_remote_output_or_log_folder_is_refused_before_any_work(
        blob, azurite, make_script, log_dir):
    from parallelrun import DataError

    fs = azurite.filesystem()
    container = blob.container_name
    fs.pipe({f"{container}/d/{i}.txt": b"1" for i in range(3)})
    scripts = make_script("""
        def init(): pass
        def run(mini_batch):
            return mini_batch
    """)
    config = _config(scripts, mini_batch_size=2, process_count_per_node=1)
    inputs = [Dataset.File.from_files(blob.path("d/*.txt" if log_dir else "d/"))]
    output = blob.path("elsewhere/") if log_dir else blob.path("d")
    logs = blob.path("d/") if log_dir else None
    with pytest.raises(DataError, match="the job's own output or log folder"):
        run_job(config, inputs, output, log_dir=logs)
    assert sorted(fs.ls(f"{container}/d/")) == [f"{container}/d/{i}.txt" for i in range(3)]
    assert not fs.exists(f"{container}/elsewhere")
