"""GPU workers: placement and throughput on a machine with NVIDIA GPUs.

The demo's PNG digits scored by a small convolutional network in PyTorch on the GPU, 64 images
per mini-batch. It checks, and prints as tables:

- placement: with ``process_count_per_node`` unset, the local backend starts one worker per
  visible GPU and gives each its own ``CUDA_VISIBLE_DEVICES``; the Ray backend (a private local
  Ray instance) starts one worker actor per GPU with ``num_gpus=1`` each. Every worker reports
  what it was given and which device torch used.
- throughput: parallelrun's local backend (one worker per GPU, and two workers per GPU, which
  overlaps one worker's PNG decoding with the other's GPU work) beside a hand-written
  ``multiprocessing.Pool(GPUs)`` whose initializer builds the same model, in one run.

    python bench/bench_gpu.py [--images 10000] [--no-ray]

Needs torch with CUDA (and ray for the Ray rows); without a GPU it says so and stops.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from _common import WORK, bar_chart, parse_args, require, table
from mnist_data import make_images

from parallelrun import Dataset, ParallelRunConfig, RayCompute, run_job

BATCH = 64

SCRIPT = '''
import os
import numpy as np
import torch
from PIL import Image


def init():
    global model, device
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)  # the same weights in every worker: the same predictions
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10)).to(device).eval()


def run(mini_batch):
    pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0
                       for p in mini_batch])
    with torch.no_grad():
        classes = model(torch.from_numpy(pixels)[:, None].to(device)).argmax(1).cpu().tolist()
    where = (f"{os.getpid()} {os.environ.get('CUDA_VISIBLE_DEVICES', '-')} {device.type}:"
             f"{torch.cuda.current_device() if device.type == 'cuda' else '-'}")
    return [f"{os.path.basename(p)} {c} {where}" for p, c in zip(mini_batch, classes)]
'''


def _script_dir() -> str:
    folder = tempfile.mkdtemp(prefix="bench-gpu-script-")
    Path(folder, "score_gpu.py").write_text(SCRIPT)
    return folder


def _job(script_dir: str, pattern: str, out: Path, **overrides):
    values = dict(source_directory=script_dir, entry_script="score_gpu.py",
                  mini_batch_size=BATCH, error_threshold=0, output_action="append_row",
                  run_invocation_timeout=300)
    values.update(overrides)
    started = time.perf_counter()
    result = run_job(ParallelRunConfig(**values), [Dataset.File.from_files(pattern)], out,
                     overwrite=True)
    assert result.succeeded, result.error
    lines = Path(result.output_file).read_text().splitlines()
    return time.perf_counter() - started, lines


def _placement(lines: list[str]) -> list[list[object]]:
    """One row per worker process: the devices it was given and used, and its item count."""
    workers = collections.Counter(tuple(line.split()[2:5]) for line in lines)
    return [[pid, visible, used, count] for (pid, visible, used), count in sorted(workers.items())]


def _pool_init(script_dir: str, gpu_ids: list[str], counter) -> None:
    with counter.get_lock():  # one GPU per Pool process, as a careful user would do by hand
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids[counter.value % len(gpu_ids)]
        counter.value += 1
    sys.path.insert(0, script_dir)
    global script
    import score_gpu as script

    script.init()


def _pool_run(chunk: list[str]) -> list[str]:
    return script.run(chunk)


def pool_baseline(script_dir: str, files: list[str], gpu_ids: list[str], out: Path) -> float:
    started = time.perf_counter()
    context = get_context("spawn")
    counter = context.Value("i", 0)
    chunks = [files[i:i + BATCH] for i in range(0, len(files), BATCH)]
    with context.Pool(len(gpu_ids), initializer=_pool_init,
                      initargs=(script_dir, gpu_ids, counter)) as pool, open(out, "w") as fh:
        for lines in pool.imap_unordered(_pool_run, chunks):
            fh.write("\n".join(lines) + "\n")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--allow-cpu", action="store_true",
                        help="go on without CUDA (torch on the CPU), to try this script out; "
                             "set CUDA_VISIBLE_DEVICES=0 to pretend there is one GPU")
    args = parse_args(parser)
    require("torch", "matplotlib", "sklearn", "PIL", *([] if args.no_ray else ["ray"]))

    import torch

    from parallelrun.backends.local import visible_gpus

    gpu_ids = visible_gpus()
    if not gpu_ids or not (torch.cuda.is_available() or args.allow_cpu):
        print("no CUDA GPU here: nothing to check")
        return 1
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "the CPU"
    print(f"GPUs: {gpu_ids} ({device}), torch {torch.__version__}", flush=True)
    data = make_images(WORK / f"gpu-{args.images}", args.images)
    pattern = str(data / "images" / "*.png")
    files = sorted(str(p) for p in (data / "images").glob("*.png"))
    script_dir = _script_dir()

    timings: dict[str, float] = {}
    pool_name = f"multiprocessing.Pool({len(gpu_ids)}) by hand"
    for _ in range(args.repeat):  # interleaved, best of N: the page cache warms for all alike
        runs = {
            "parallelrun local, 1 worker per GPU (default)": lambda: _job(
                script_dir, pattern, WORK / "gpu-local"),
            "parallelrun local, 2 workers per GPU": lambda: _job(
                script_dir, pattern, WORK / "gpu-local2",
                process_count_per_node=2 * len(gpu_ids)),
            pool_name: lambda: (pool_baseline(script_dir, files, gpu_ids,
                                              WORK / "gpu-pool.txt"), None),
        }
        placements = {}
        for name, job in runs.items():
            seconds, placements[name] = job()
            timings[name] = min(timings.get(name, float("inf")), seconds)
    table("GPU placement: local backend, process_count_per_node unset",
          ["worker pid", "CUDA_VISIBLE_DEVICES", "torch device", "images"],
          _placement(placements["parallelrun local, 1 worker per GPU (default)"]))
    table("GPU placement: local backend, 2 workers per GPU",
          ["worker pid", "CUDA_VISIBLE_DEVICES", "torch device", "images"],
          _placement(placements["parallelrun local, 2 workers per GPU"]))
    if not args.no_ray:
        try:
            ray_compute = RayCompute.attach(None, "gpu", address="local")
            seconds, lines = _job(script_dir, pattern, WORK / "gpu-ray",
                                  compute_target=ray_compute)
        except Exception as exc:  # noqa: BLE001 - the local rows still stand; say why not Ray
            print(f"Ray backend: {type(exc).__name__}: {exc}", flush=True)
        else:
            timings["parallelrun Ray, 1 actor per GPU (default)"] = seconds
            table("GPU placement: Ray backend (private local instance), "
                  "process_count_per_node unset",
                  ["worker pid", "CUDA_VISIBLE_DEVICES", "torch device", "images"],
                  _placement(lines))
    pool = timings[pool_name]
    table(f"GPU throughput: {len(files)} PNG digits, {BATCH} per mini-batch, conv net on "
          f"{device}, best of {args.repeat} (Ray: one run, incl. starting Ray) (wall time incl. start-up)",
          ["runner", "seconds", "images/s", "vs Pool"],
          [[name, f"{secs:.2f}", len(files) / secs, f"{pool / secs:.2f}x"]
           for name, secs in timings.items()])
    bar_chart("gpu", f"{len(files)} PNG digits on {device} "
              "(higher is better)", {name: len(files) / secs for name, secs in timings.items()},
              "images/s", baseline=pool_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
