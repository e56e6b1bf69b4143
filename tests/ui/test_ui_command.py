"""``parallelrun ui`` as a user starts it: a real process that prints its URL and cancel token,
listens on 127.0.0.1 only, moves to the next free port when its port is taken, and warns
before listening on another address."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import psutil
import pytest

from parallelrun.ui.server import bind, is_loopback


def start(*args: str, cwd=None) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    process = subprocess.Popen([sys.executable, "-m", "parallelrun.cli", "ui", *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: "queue.Queue[str]" = queue.Queue()

    def pump():
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def read_until(lines, prefix: str, timeout: float = 60.0) -> list[str]:
    seen = []
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"the process ended before printing {prefix!r}: {seen}")
        seen.append(line)
        if line.startswith(prefix):
            return seen


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def listening(pid: int) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN}


def test_serves_on_loopback_and_prints_url_and_token(ui_workspace):
    sock = bind("127.0.0.1", 0)  # a port that is free right now
    port = sock.getsockname()[1]
    sock.close()
    process, lines = start("--workspace", str(ui_workspace.root), "--port", str(port))
    try:
        output = read_until(lines, "cancel token:")
        url = next(line.split("URL: ", 1)[1] for line in output if line.startswith("URL: "))
        token = output[-1].split(": ", 1)[1]
        assert url == f"http://127.0.0.1:{port}/" and len(token) >= 32
        read_until(lines, "open with the token")
        assert listening(process.pid) == {("127.0.0.1", port)}
        with urllib.request.urlopen(f"{url}api/workspace", timeout=10) as response:
            assert json.load(response)["name"] == "ui-tests"
        # the printed token cancels; a wrong one does not (on a run that has ended: 409)
        for given, status in (("wrong", 403), (token, 409)):
            request = urllib.request.Request(f"{url}api/runs/{ui_workspace.run_id}/cancel",
                                             method="POST", headers={"X-Parallelrun-Token": given})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == status
    finally:
        stop(process)
    assert process.returncode in (0, -signal.SIGINT)


def test_takes_the_next_free_port_and_finds_the_workspace_from_the_folder(ui_workspace):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    process, lines = start("--port", str(port), cwd=str(ui_workspace.root / "data"))
    try:
        output = read_until(lines, "cancel token:")
        assert any(line.startswith(f"port {port} is taken; using ") for line in output), output
        url = next(line.split("URL: ", 1)[1] for line in output if line.startswith("URL: "))
        used = int(url.rsplit(":", 1)[1].strip("/"))
        assert used > port and listening(process.pid) == {("127.0.0.1", used)}
    finally:
        stop(process)
        taken.close()


def test_another_host_is_warned_about(ui_workspace):
    # 192.0.2.1 (TEST-NET-1) is on no interface: the warning comes, then binding fails cleanly
    result = subprocess.run([sys.executable, "-m", "parallelrun.cli", "ui", "--workspace",
                             str(ui_workspace.root), "--host", "192.0.2.1", "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "warning: listening on 192.0.2.1: anyone who can reach" in result.stderr
    assert "error:" in result.stderr and "--port" in result.stderr


def test_without_a_workspace_it_serves_the_default_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PARALLELRUN_HOME", str(tmp_path / "home"))
    (tmp_path / "project").mkdir()
    process, lines = start("--port", "0", cwd=tmp_path / "project")
    try:
        seen = read_until(lines, "URL:")
    finally:
        stop(process)
    assert any(f"workspace 'default' ({tmp_path / 'home'})" in line for line in seen), seen
    assert (tmp_path / "home" / "config.json").is_file()


def test_a_folder_that_is_no_workspace_is_refused_with_how_to_make_one(tmp_path):
    result = subprocess.run([sys.executable, "-m", "parallelrun.cli", "ui", "--port", "0",
                             "--workspace", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "parallelrun workspace create NAME" in result.stderr


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "::", "example.com"))
