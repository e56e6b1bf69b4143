"""Every code block of README.md runs as written, twice in a row.

The README is read when the test runs. Its ```python blocks, and its ```bash, ```sh, ```shell
and unlabelled blocks (shell), run in the order they appear, in one prepared folder, as a reader
would run them top to bottom: Python blocks share one interpreter and its names (as cells of a
notebook), shell blocks run with ``bash -e`` and ``parallelrun`` on PATH. Blocks in other
languages (```yaml, ```text, ...) are not code to run. An HTML comment on the line before a
block (blank lines between are allowed) changes what happens to it:

- ``<!-- snippet: skip (why) -->``: the block is not run; the reason is required (a server that
  runs until stopped, a fragment with ``...``, a cluster this machine does not have).
- ``<!-- snippet: file PATH -->``: the block is the content of the file PATH (relative to the
  folder), written there before the blocks after it run, e.g. the entry script the quick start
  introduces as ``scripts/score.py``.

Then the whole README runs a second time in the same folder: what a reader who runs it again
finds (an output folder the first run filled, a datastore already registered) must work too.

The folder and the environment hold what the README's examples refer to beyond what they make
themselves (see :func:`prepare_folder` and :func:`snippet_environment`):

- ``data/images/*.png``: 20 digit images (28x28 PNGs), ``models/mnist-model.pkl``: a digit
  classifier, ``scripts/digit_identification.py``: the Azure ML article's entry script;
- an Azure Blob container ``sampledata`` holding the same images under ``mnist/`` (Azurite),
  reached through ``AZURE_STORAGE_CONNECTION_STRING``; ``MNIST_KEY`` holds its account key;
- an S3 bucket ``raw`` (moto), reached through ``AWS_ENDPOINT_URL`` and ``AWS_*`` keys;
- ``HOME`` is a fresh folder (nothing of the user's is read or written).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PYTHON_LANGUAGES = {"python", "py", "python3"}
SHELL_LANGUAGES = {"", "bash", "sh", "shell"}
#: one run of the whole README; both runs together must stay well under a minute
RUN_TIMEOUT = 120
SAMPLE_IMAGES = 20

_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<language>[\w+-]*)[^\n]*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<action>\S+)\s*(?P<argument>.*?)\s*-->\s*$")


@dataclasses.dataclass
class Snippet:
    """One code block of the README and what to do with it."""

    line: int            # of the block's first code line, 1-based
    language: str        # "python" or "shell"
    code: str
    action: str = "run"  # run | skip | file
    argument: str = ""   # skip: the reason; file: the path


class MarkerError(ValueError):
    """A ``<!-- snippet: ... -->`` comment the test cannot honour."""


def parse_snippets(text: str, name: str = "README.md") -> list[Snippet]:
    """The Python and shell blocks of a Markdown text, with the markers placed before them."""
    snippets: list[Snippet] = []
    marker: tuple[str, str, int] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MARKER.match(line.strip())
        if found:
            marker = (found["action"], found["argument"], i + 1)
            i += 1
            continue
        fence = _FENCE.match(line.strip()) if line.lstrip().startswith(("`", "~")) else None
        if fence is None:
            if line.strip() and marker is not None:
                raise MarkerError(f"{name}:{marker[2]}: the snippet marker must be right before a "
                                  "code block (only blank lines between)")
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence["fence"]:
            end += 1
        language = fence["language"].lower()
        code = "\n".join(lines[i + 1:end]) + "\n"
        kind = ("python" if language in PYTHON_LANGUAGES
                else "shell" if language in SHELL_LANGUAGES else None)
        if kind is not None:
            snippet = Snippet(i + 2, kind, code)
            if marker is not None:
                snippet.action, snippet.argument = _checked_marker(marker, name)
            snippets.append(snippet)
        elif marker is not None:
            raise MarkerError(f"{name}:{marker[2]}: a snippet marker before a ```{language} "
                              "block, which is not run anyway")
        marker = None
        i = end + 1
    return snippets


def _checked_marker(marker: tuple[str, str, int], name: str) -> tuple[str, str]:
    action, argument, line = marker
    if action == "skip":
        reason = re.fullmatch(r"\((.+)\)", argument)
        if not reason or not reason[1].strip():
            raise MarkerError(f"{name}:{line}: say why the block is skipped: "
                              "<!-- snippet: skip (the reason) -->")
        return action, reason[1].strip()
    if action == "file":
        path = Path(argument)
        if not argument or path.is_absolute() or ".." in path.parts:
            raise MarkerError(f"{name}:{line}: <!-- snippet: file PATH --> needs a relative path "
                              f"inside the folder, not {argument!r}")
        return action, argument
    raise MarkerError(f"{name}:{line}: unknown snippet marker {action!r}: use "
                      "<!-- snippet: skip (why) --> or <!-- snippet: file PATH -->")


# The program that runs the snippets, in the prepared folder: one interpreter for the Python
# blocks (they share names, as a reader's session does), bash for the shell blocks.
DRIVER = textwrap.dedent('''
    import json, subprocess, sys, traceback
    from pathlib import Path

    snippets = json.loads(Path(sys.argv[1]).read_text())
    namespace = {"__name__": "__main__"}
    for snippet in snippets:
        where = f"README.md:{snippet['line']}"
        if snippet["action"] == "skip":
            print(f"--- {where}: skipped ({snippet['argument']})", flush=True)
            continue
        if snippet["action"] == "file":
            path = Path(snippet["argument"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(snippet["code"])
            print(f"--- {where}: wrote {path}", flush=True)
            continue
        print(f"--- {where}: {snippet['language']}", flush=True)
        if snippet["language"] == "python":
            # padded so that tracebacks give the README's own line numbers
            code = compile("\\n" * (snippet["line"] - 1) + snippet["code"], "README.md", "exec")
            try:
                exec(code, namespace)
            except BaseException:
                traceback.print_exc()
                print(f"FAILED: the python block at {where}", flush=True)
                sys.exit(1)
        else:
            sys.stdout.flush()
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", snippet["code"]])
            if done.returncode != 0:
                print(f"FAILED: the shell block at {where} exited with {done.returncode}",
                      flush=True)
                sys.exit(1)
''')


def prepare_folder(folder: Path, azurite, moto_s3) -> None:
    """What the README's examples use without making it themselves (see the module docstring)."""
    sys.path.insert(0, str(ROOT / "examples" / "mnist"))
    try:
        from mnist_data import make_images, train_model
    finally:
        sys.path.remove(str(ROOT / "examples" / "mnist"))
    samples = make_images(folder / "samples", SAMPLE_IMAGES)
    (folder / "data").mkdir()
    shutil.copytree(samples / "images", folder / "data" / "images")
    shutil.rmtree(samples)
    images = sorted((folder / "data" / "images").glob("*.png"))
    train_model(folder / "models", samples=300)
    (folder / "scripts").mkdir()
    shutil.copy(ROOT / "examples" / "azureml_port" / "scripts" / "digit_identification.py",
                folder / "scripts")
    blob = azurite.filesystem()
    if not blob.exists("sampledata"):
        blob.mkdir("sampledata")
    blob.put([str(p) for p in images], "sampledata/mnist/")
    s3 = moto_s3.client()
    if "raw" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket="raw")


def snippet_environment(home: Path, azurite, moto_s3) -> dict[str, str]:
    """The environment the snippets run in: parallelrun on PATH, the local storage servers."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "AZURE_", "PARALLELRUN_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
        MNIST_KEY=azurite.account_key,
        AWS_ENDPOINT_URL=moto_s3.endpoint_url,
        AWS_ACCESS_KEY_ID=moto_s3.access_key_id,
        AWS_SECRET_ACCESS_KEY=moto_s3.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    return env


def test_every_readme_block_runs_twice_in_a_row(tmp_path, azurite, moto_s3):
    snippets = parse_snippets(README.read_text(encoding="utf-8"))
    assert any(s.action == "run" and s.language == "python" for s in snippets)
    folder, home = tmp_path / "reader", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    prepare_folder(folder, azurite, moto_s3)
    plan = tmp_path / "snippets.json"
    plan.write_text(json.dumps([dataclasses.asdict(s) for s in snippets]))
    driver = tmp_path / "run_snippets.py"
    driver.write_text(DRIVER)
    env = snippet_environment(home, azurite, moto_s3)
    for attempt in ("first", "second"):
        done = subprocess.run([sys.executable, str(driver), str(plan)], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=RUN_TIMEOUT)
        if done.returncode != 0:
            pytest.fail(f"README.md failed on its {attempt} run (in {folder}):\n"
                        f"{done.stdout[-6000:]}", pytrace=False)


def test_markers_say_what_they_do():
    text = textwrap.dedent("""\
        Intro.

        <!-- snippet: file scripts/score.py -->
        ```python
        def init(): pass
        ```

        <!-- snippet: skip (serves until stopped) -->

        ```bash
        parallelrun ui
        ```

        ```
        make test
        ```

        ```yaml
        type: parallel
        ```
        """)
    snippets = parse_snippets(text)
    assert [(s.line, s.language, s.action, s.argument) for s in snippets] == [
        (5, "python", "file", "scripts/score.py"),
        (11, "shell", "skip", "serves until stopped"),
        (15, "shell", "run", ""),
    ]
    assert snippets[0].code == "def init(): pass\n"


@pytest.mark.parametrize("marker, message", [
    ("<!-- snippet: skip -->", "say why the block is skipped"),
    ("<!-- snippet: skip () -->", "say why the block is skipped"),
    ("<!-- snippet: file /etc/passwd -->", "needs a relative path"),
    ("<!-- snippet: file ../score.py -->", "needs a relative path"),
    ("<!-- snippet: ignore (why) -->", "unknown snippet marker 'ignore'"),
])
def test_a_marker_the_test_cannot_honour_is_an_error(marker, message):
    with pytest.raises(MarkerError, match=re.escape(message)):
        parse_snippets(f"{marker}\n```bash\necho hi\n```\n")


def test_a_marker_away_from_its_block_is_an_error():
    with pytest.raises(MarkerError, match="right before a code block"):
        parse_snippets("<!-- snippet: skip (why) -->\nSome text.\n```bash\necho hi\n```\n")
