"""The main job end to end: digit images in, predictions out, accuracy printed.

    make demo          # or: python examples/mnist/demo.py [--images 20000] [--processes 2]

Writes demo_data/ (images, model) once, then runs examples/mnist/digit_identification.py over
every image with parallelrun's local worker processes and a live progress bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mnist_data import accuracy, load_labels, make_images, train_model  # noqa: E402

from parallelrun import Dataset, ParallelRunConfig, run_job  # noqa: E402
from parallelrun.cli.progress_view import TerminalProgress  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--data", default="demo_data")
    args = parser.parse_args()

    data = Path(args.data)
    started = time.perf_counter()
    make_images(data / "mnist", args.images)
    model_dir = train_model(data / "models" / "mnist")
    print(f"data ready: {args.images} images, model in {model_dir} "
          f"({time.perf_counter() - started:.1f} s)")

    images = Dataset.File.from_files(path=str(data / "mnist" / "images" / "*.png"))
    config = ParallelRunConfig(
        source_directory=str(HERE), entry_script="digit_identification.py",
        mini_batch_size="5", error_threshold=10, output_action="append_row",
        process_count_per_node=args.processes, run_invocation_timeout=60, logging_level="INFO")
    result = run_job(config, inputs=[images], output=data / "out", models={"mnist": model_dir},
                     listeners=[TerminalProgress()], overwrite=True)  # the demo's own folder
    print(result.summary())
    if not result.succeeded:
        return 1
    score, lines = accuracy(result.output_file, load_labels(data / "mnist"))
    rate = result.items_succeeded / result.elapsed_seconds
    print(f"accuracy: {score:.2%} over {lines} predictions ({rate:,.0f} images/s with "
          f"{args.processes} processes)")
    return 0 if lines == args.images else 1


if __name__ == "__main__":
    sys.exit(main())
