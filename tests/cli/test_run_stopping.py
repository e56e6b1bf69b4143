"""`parallelrun run` stopped every way a user stops it: Ctrl-C, SIGTERM, kill -9, a full disk.

Each time the job's finished rows are kept, a result is written where possible, and the job
resumes to every row exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.waiting import wait_for

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]

# each item's number, after a short sleep; with a Ctrl-C in mind, run() ignores nothing
SLOW_SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep(float(os.environ.get("SLEEP", "0.05")))
        return [int(open(p).read()) for p in mini_batch]
"""


def job_args(*extra: str) -> list[str]:
    return [*CLI, "run", "--source-directory", "scripts", "--entry-script", "score.py",
            "--input", "data", "--mini-batch-size", "2", "--output", "out",
            "--process-count-per-node", "2", *extra]


def start(tmp_path: Path, *extra: str, sleep: str = "0.05") -> subprocess.Popen:
    env = {**os.environ, "SLEEP": sleep}
    return subprocess.Popen(job_args(*extra), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def rows(tmp_path: Path, name: str = "out/parallel_run_step.txt") -> list[int]:
    path = tmp_path / name
    return sorted(int(x) for x in path.read_text().split()) if path.exists() else []


def committed(tmp_path: Path) -> int:
    journal = tmp_path / "out" / "logs" / "sys" / "journal.txt"
    return len(journal.read_text().splitlines()) if journal.exists() else 0


def resume(tmp_path: Path, sleep: str = "0") -> subprocess.CompletedProcess:
    return subprocess.run(job_args("--resume"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "SLEEP": sleep})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_job_gracefully_and_resume_finishes_it(make_script, make_files,
                                                                  tmp_path, signum):
    make_script(SLOW_SCORE)
    make_files(200)
    proc = start(tmp_path, sleep="0.1")
    wait_for(lambda: committed(tmp_path) >= 3, timeout=120)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, output
    assert "Canceled" in output and "Aborted!" not in output
    assert "to resume it: parallelrun run" in output and "--resume" in output
    result = (tmp_path / "out/logs/job_result.txt").read_text()
    assert "status: Canceled" in result
    kept = rows(tmp_path)
    assert kept and len(kept) == len(set(kept)) and len(kept) < 200
    done = resume(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(tmp_path) == list(range(200))


def test_a_second_ctrl_c_stops_at_once(make_script, make_files, tmp_path):
    make_script("""
        import os, time
        def init(): pass
        def run(mini_batch):
            numbers = [int(open(p).read()) for p in mini_batch]
            time.sleep(60 if 7 in numbers else 0.05)
            return numbers
    """)
    make_files(40)
    proc = start(tmp_path)
    wait_for(lambda: committed(tmp_path) >= 5, timeout=120)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)   # the first asked for a graceful stop; run() sleeps 60 s on item 7
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "Canceled" in output and "--resume" in output
    assert "status: Canceled" in (tmp_path / "out/logs/job_result.txt").read_text()
    kept = rows(tmp_path)
    assert len(kept) == len(set(kept))


def test_kill_9_of_the_whole_job_five_times_then_resume_gives_every_row_once(
        make_script, make_files, tmp_path):
    make_script(SLOW_SCORE)
    make_files(600)   # 300 mini-batches: the five short attempts never finish the job
    chance = random.Random(15)
    for attempt in range(5):
        before = committed(tmp_path)
        extra = ("--resume",) if attempt else ()
        proc = start(tmp_path, *extra, sleep="0.05")
        try:
            wait_for(lambda: committed(tmp_path) >= before + 2 or proc.poll() is not None,
                     timeout=120, every=0.02)
        except AssertionError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"attempt {attempt}: {proc.communicate()[0][-3000:]}") from None
        assert proc.poll() is None, f"attempt {attempt} ended: {proc.communicate()[0][-3000:]}"
        time.sleep(chance.uniform(0, 0.3))
        os.killpg(proc.pid, signal.SIGKILL)   # the coordinator and its workers at once
        proc.wait()
        kept = rows(tmp_path)
        # what is on disk at the kill holds no row twice (rows not yet journaled are cut and
        # run again on resume)
        assert len(set(kept)) == len(kept)
    assert committed(tmp_path) < 300
    done = resume(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(tmp_path) == list(range(600))


def test_a_full_disk_fails_the_job_with_a_result_and_resume_is_exact(make_script, make_files,
                                                                   tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine allows no tmpfs mount; test_a_read_only_output_folder covers it")
    try:
        make_script("""
            def init(): pass
            def run(mini_batch):
                return [open(p).read() + " " + "x" * 600 for p in mini_batch]
        """)
        make_files(1500)
        (mount / "filler").write_bytes(b"\0" * (1536 * 1024))  # 0.9 MiB of rows fit only without it
        args = job_args()
        args[args.index("out")] = str(mount / "out")
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        assert "--resume" in done.stderr
        result = (mount / "out" / "logs" / "job_result.txt").read_text()
        assert "status: Failed" in result and "No space left on device" in result
        (mount / "filler").unlink()
        # the job's own files fit now: resume it
        again = subprocess.run(args + ["--resume"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        lines = (mount / "out" / "parallel_run_step.txt").read_text().splitlines()
        numbers = sorted(int(line.split()[0]) for line in lines)
        assert numbers == list(range(1500))
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_read_only_output_folder_is_a_failed_job_not_a_traceback(make_script, make_files,
                                                                   tmp_path):
    make_script(SLOW_SCORE)
    make_files(4)
    out = tmp_path / "out"
    out.mkdir()
    # read-only for root too (permission bits are not): a read-only mount
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(out)],
                      capture_output=True).returncode != 0:
        os.chmod(out, 0o555)
        if os.access(out, os.W_OK):
            pytest.skip("neither a mount nor permission bits make a read-only folder here")
    try:
        done = subprocess.run(job_args(), cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Read-only file system" in done.stderr or "Permission denied" in done.stderr
        assert "Traceback" not in done.stderr and "Failed" in done.stderr
    finally:
        subprocess.run(["umount", "-l", str(out)], capture_output=True)
        os.chmod(out, 0o755)
