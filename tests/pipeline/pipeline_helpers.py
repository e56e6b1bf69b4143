"""Helpers of the pipeline tests (imported by name: this folder is on sys.path)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fixtures.waiting import wait_for  # noqa: F401 - the tests import it from here

#: an entry script: "<file> <number * scale>" per item; --delay per mini-batch; --trace FILE
#: appends "<pid> <file> <file>..." per mini-batch, so a test can see what ran where
SCORE = """
import argparse, os, time
from azureml.core import Run

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--trace", default=None)
    args, _ = parser.parse_known_args()

def run(mini_batch):
    time.sleep(args.delay)
    rows = [f"{os.path.basename(p)} {int(open(p).read()) * args.scale}" for p in mini_batch]
    if args.trace:
        with open(args.trace, "a") as fh:
            fh.write(f"{os.getpid()} " + " ".join(os.path.basename(p) for p in mini_batch) + "\\n")
    Run.get_context().log("batch_size", len(mini_batch))
    return rows
"""


def rows_of(path) -> list[str]:
    return sorted(line for line in Path(path).read_text().splitlines() if line)



def script(text: str) -> str:
    return textwrap.dedent(text).lstrip()
