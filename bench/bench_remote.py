"""Remote inputs: the image workload read from Azure Blob (Azurite) with prefetch on and off,
beside the same job on local files and beside "download everything, then run locally".

The entry script is the demo's digit classifier (examples/mnist/digit_identification.py) over
28x28 PNG files in mini-batches of 5, 2 worker processes. Two model costs are measured:

* ``as is``: the tiny classifier, ~0.1 ms per image: pure I/O, the hardest case for remote
  inputs (every file is one HTTP request to Azurite, which shares the 2 cores);
* ``+N ms/image``: a model that takes N ms per image outside the Python process's CPU (a sleep,
  as a GPU or a remote model server would), so the workers' CPUs stay free for downloads.

Baselines: the same job on local files (the target: prefetch >= 0.8x its throughput), and what a
user would do without remote inputs: copy the whole folder down with fsspec (concurrently), then
run on the local copy (time to copy included).

    python bench/bench_remote.py [--images 2000] [--work-ms 0 4 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time

from _common import ROOT, SCRIPT_DIR, WORK, bar_chart, parse_args, require, table
from mnist_data import make_images, train_model

from parallelrun import Dataset, Datastore, ParallelRunConfig, Workspace, run_job

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# the demo's script with a model that takes WORK_MS per image outside this CPU
SLOW_SCRIPT = '''
import os, sys, time
sys.path.insert(0, {script_dir!r})
import digit_identification as demo
WORK = float(os.environ.get("WORK_MS", "0")) / 1000

def init():
    demo.init()

def run(mini_batch):
    out = demo.run(mini_batch)
    if WORK:
        time.sleep(WORK * len(mini_batch))
    return out
'''


def start_azurite(folder: str) -> tuple[subprocess.Popen, int]:
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise SystemExit("Azurite is not installed: run `make setup` (npm ci)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                             "--location", folder, "--silent", "--skipApiVersionCheck", "--loose"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("Azurite did not start")


def config(script_dir: str, work_ms: float, prefetch: bool = True) -> ParallelRunConfig:
    env = {"WORK_MS": str(work_ms)}
    if not prefetch:
        env["PARALLELRUN_PREFETCH"] = "0"
    return ParallelRunConfig(source_directory=script_dir, entry_script="score.py",
                             mini_batch_size=5, error_threshold=0, output_action="append_row",
                             process_count_per_node=2, environment_variables=env)


def timed(job) -> float:
    started = time.perf_counter()
    result = job()
    assert result.succeeded, result.error
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--work-ms", type=float, nargs="+", default=[0.0, 4.0, 20.0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parse_args(parser)
    require("adlfs", "matplotlib", "sklearn", "PIL")

    data = make_images(WORK / f"remote-{args.images}", args.images)
    images = data / "images"
    model_dir = str(train_model(WORK / "models" / "mnist"))
    script_dir = tempfile.mkdtemp(prefix="bench-remote-script-")
    with open(os.path.join(script_dir, "score.py"), "w") as fh:
        fh.write(SLOW_SCRIPT.format(script_dir=str(SCRIPT_DIR)))
    azurite_dir = tempfile.mkdtemp(prefix="bench-azurite-")
    proc, port = start_azurite(azurite_dir)
    try:
        ws = Workspace.create("bench", path=tempfile.mkdtemp(prefix="bench-ws-"))
        blob = Datastore.register_azure_blob_container(
            ws, "images", "mnist", ACCOUNT, account_key=KEY, endpoint=f"127.0.0.1:{port}",
            protocol="http", create_if_not_exists=True)
        started = time.perf_counter()
        blob.upload(str(images), target_path="images/")
        print(f"uploaded {args.images} images to Azurite in {time.perf_counter() - started:.1f} s",
              flush=True)
        models = {"mnist": model_dir}
        local_ds = Dataset.File.from_files(str(images / "*.png"))
        remote_ds = Dataset.File.from_files(blob.path("images/*.png"))
        out = str(WORK / "remote-out")

        def download_then_run(work_ms):
            def job():
                target = tempfile.mkdtemp(prefix="bench-download-")
                try:
                    blob.download(target, prefix="images/")
                    return run_job(config(script_dir, work_ms), [f"{target}/*.png"], out,
                                   models=models, overwrite=True)
                finally:
                    shutil.rmtree(target, ignore_errors=True)
            return job

        rows = []
        for work_ms in args.work_ms:
            runs = {
                "local files": lambda: run_job(config(script_dir, work_ms), [local_ds], out,
                                               models=models, overwrite=True),
                "Azurite, prefetch on": lambda: run_job(config(script_dir, work_ms), [remote_ds],
                                                        out, models=models, overwrite=True),
                "Azurite, prefetch off": lambda: run_job(config(script_dir, work_ms, False),
                                                         [remote_ds], out, models=models, overwrite=True),
                "download all, then local job": download_then_run(work_ms),
            }
            best: dict[str, float] = {}
            for _ in range(args.repeat):  # interleaved, best of N
                for name, job in runs.items():
                    best[name] = min(best.get(name, float("inf")), timed(job))
            local = best["local files"]
            model = "as is" if not work_ms else f"+{work_ms:g} ms/image"
            for name, secs in best.items():
                rows.append([model, name, f"{secs:.2f}", args.images / secs, f"{local / secs:.2f}x"])
            bar_chart(f"remote-{work_ms:g}ms", f"{args.images} PNG digits, model {model} "
                      "(higher is better)", {name: args.images / secs for name, secs in best.items()},
                      "images/s", baseline="local files",
                      ours=["Azurite, prefetch on", "Azurite, prefetch off"])
        table(f"Remote inputs: {args.images} PNG digits from Azurite, mini_batch_size=5, 2 processes, "
              f"best of {args.repeat} (wall time incl. start-up and listing)",
              ["model", "input", "seconds", "images/s", "vs local files"], rows)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(azurite_dir, ignore_errors=True)
        shutil.rmtree(script_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
