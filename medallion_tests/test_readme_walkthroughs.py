"""Every README walkthrough, run from the README's own text, as a new user pastes it into a new shell.

A walkthrough is the shell blocks that follow `<!-- walkthrough: NAME -->` comments in README.md, in order.
Each block runs in its own `bash` (with `set -e -o pipefail`, so the first failing command fails the test),
from the root of a fresh copy of the repository. A block whose last line says "Ctrl-C stops it" serves: it
starts in its own process group, must become ready (the UI answers HTTP, an emulator prints "serving"),
keeps serving while the walkthrough's later blocks run (a second terminal), and is stopped at the end.

What the test changes, and only this:
- the copy holds the repository's files (tracked, and new ones not ignored), not its `.git`; its `.venv` is
  a link to the virtual environment running the tests, and `PYTHONPATH` is the copy and its `devtools/`, so the
  code under test is the copy's even when that environment's editable install points at another checkout;
- `make demo` runs what the target runs once `.venv` is installed, `.venv/bin/medallion demo` (the install
  itself, `pip install -e`, must not run against a shared environment);
- `medallion ui` gets `--port <a free port>`, so parallel runs do not fight over 3000;
- the shell starts without `MEDALLION_*` and `DAGSTER_*` variables, as a new terminal would.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medallion_tests.servers import Server, free_port, wait_for_http

pytestmark = [pytest.mark.walkthrough, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WALKTHROUGHS = ("demo", "ui", "sql", "quality", "erase", "replay", "local-aws", "local-databricks")
SERVES = "Ctrl-C stops it"
_BLOCK = re.compile(r"<!-- walkthrough: ([\w-]+) -->\s*```bash\n(.*?)```", re.S)


def walkthroughs(text: str) -> dict[str, list[str]]:
    """{name: [shell block, …]} in README order."""
    found: dict[str, list[str]] = {}
    for name, block in _BLOCK.findall(text):
        found.setdefault(name, []).append(block)
    return found


def _fresh_copy(dest: Path) -> Path:
    """The repository's files as a fresh clone has them (plus new, unignored ones), `.venv` linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        source = ROOT / os.fsdecode(raw)
        if source.is_file():
            target = dest / os.fsdecode(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (dest / ".venv").symlink_to(Path(sys.prefix))
    return dest


def _shell_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DAGSTER_", "PYTEST_"))}
    return env | {"PYTHONPATH": os.pathsep.join([str(clone), str(clone / "devtools")])}


class Walkthrough:
    """Runs one walkthrough's blocks in a copy of the repository; `stop()` ends what still serves."""

    def __init__(self, clone: Path, logs: Path) -> None:
        self.clone, self.logs = clone, logs
        self.env = _shell_env(clone)
        self.servers: list[Server] = []
        self.printed: list[str] = []
        self.ui_url: str | None = None

    def run(self, block: str, *, timeout: float = 600) -> str:
        """Runs a block to its end (or, if it serves, until it is ready) and returns what it printed."""
        lines = [line for line in block.strip().splitlines() if line.strip()]
        serving = [i for i, line in enumerate(lines) if SERVES in line]
        assert serving in ([], [len(lines) - 1]), f"only a block's last line may serve:\n{block}"
        lines = [self._substitute(line) for line in lines]
        script = "set -e -o pipefail\n" + "\n".join(lines)
        if not serving:
            done = subprocess.run(
                ["bash", "-c", script], cwd=self.clone, env=self.env, capture_output=True, text=True, timeout=timeout
            )
            printed = done.stdout + done.stderr
            assert done.returncode == 0, f"exit {done.returncode} from:\n{block}\n--- it printed:\n{printed[-4000:]}"
            self.printed.append(printed)
            return printed
        log = self.logs / f"serve-{len(self.servers)}.log"
        server = Server(script, log=log, cwd=self.clone, env=self.env)
        self.servers.append(server)
        # The block's earlier commands run first, in the same shell: they count towards the wait.
        if " ui" in lines[-1]:
            assert self.ui_url is not None
            wait_for_http(f"{self.ui_url}/server_info", timeout=timeout, server=server)
        else:
            _wait_for_text(server, "serving", timeout=timeout)
        printed = server.log.read_text(errors="replace")
        self.printed.append(printed)
        return printed

    def _substitute(self, line: str) -> str:
        if line.strip().startswith("make demo"):
            line = line.replace("make demo", ".venv/bin/medallion demo", 1)
        if "medallion ui" in line:
            port = free_port()
            self.ui_url = f"http://127.0.0.1:{port}"
            line = line.replace("medallion ui", f"medallion ui --port {port}", 1)
        return line

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def _wait_for_text(server: Server, text: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.tail(200):
            return
        if not server.alive():
            raise AssertionError(f"exited ({server.process.returncode}) before it said {text!r}:\n{server.tail()}")
        time.sleep(0.5)
    raise AssertionError(f"never said {text!r} within {timeout:.0f} s:\n{server.tail()}")


@pytest.fixture(scope="module")
def readme() -> dict[str, list[str]]:
    return walkthroughs(README.read_text(encoding="utf-8"))


def _walkthrough(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Walkthrough]:
    root = tmp_path_factory.mktemp(f"walkthrough-{name}")
    clone = root / "medallion"
    clone.mkdir()
    walk = Walkthrough(_fresh_copy(clone), root)
    try:
        yield walk
    finally:
        walk.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, readme) -> Iterator[tuple[Walkthrough, str]]:
    """The demo walkthrough, once for the demo, UI and SQL tests (they follow it in the README)."""
    for walk in _walkthrough(tmp_path_factory, "demo"):
        printed = "".join(walk.run(block, timeout=300) for block in readme["demo"])
        yield walk, printed


def test_the_readme_marks_every_walkthrough(readme):
    assert tuple(readme) == WALKTHROUGHS, "README.md lost or reordered a `<!-- walkthrough: … -->` marker"
    assert all(block.strip() for blocks in readme.values() for block in blocks)


def _summary_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if re.match(r"^medallion\.\w+\.\w+\s+\d+\s", line)]


def test_demo_walkthrough_prints_the_summary_the_readme_shows(demo):
    walk, printed = demo
    # The README's sample output (the block after the demo walkthrough) is what a fresh demo prints.
    readme_text = README.read_text(encoding="utf-8")
    sample = readme_text[readme_text.index("<!-- walkthrough: demo -->") :].split("```")[3]
    expected = [[*row[:-1], row[-1].replace("<repo>", str(walk.clone))] for row in _summary_rows(sample)]
    assert expected and _summary_rows(printed) == expected
    browse = next(line for line in printed.splitlines() if line.startswith("Browse it:"))
    assert f"--data-dir {walk.clone / 'data'} ui" in browse  # absolute, pasteable from anywhere


def test_ui_walkthrough_serves_the_ui_on_the_demo(demo, readme):
    walk, _ = demo
    for block in readme["ui"]:
        walk.run(block)
    assert walk.ui_url is not None
    walk.stop()


def test_sql_walkthrough_queries_lists_and_maintains(demo, readme):
    walk, _ = demo
    printed = "".join(walk.run(block, timeout=300) for block in readme["sql"])
    assert "(10 rows)" in printed  # LIMIT 10 of the 165 daily_revenue rows
    # 4 raw, 14 trusted (4 sources, their quarantines and quality figures, 2 histories), 4 refined
    assert len(re.findall(r"(?m)^medallion\.\w+\.\w+\s+owner=", printed)) == 22
    assert re.search(r"(?m)^d\s+True\s+[1-9]\d*\s*$", printed), "no deleted payment kept as a tombstone"
    assert re.search(r"(?m)^pay-\d+\s+\w+\s+d\s+\d+\s+.*\s+None\s+True\s*$", printed), "no delete in the history"
    assert re.search(r"(?m)^cus-000001\s+enterprise\s+.*\s+None\s+True\s*$", printed), "no customer version"
    assert "Traceback" not in printed


def test_quality_walkthrough_shows_the_trend_and_reads_as_each_principal(demo, readme):
    walk, _ = demo
    (block,) = readme["quality"]
    printed = walk.run(block, timeout=300)
    assert "order_events: 1 batch, newest raw batch" in printed
    assert "baseline too short" in printed  # one batch: no verdict yet
    assert (walk.clone / "data" / "quality.png").read_bytes()[:4] == b"\x89PNG"
    uk = printed[printed.index("country") : printed.index("rows)") + 5]
    assert re.search(r"(?m)^GB\s+\d+\s+\[redacted\]", uk) and "(1 rows)" in uk
    assert re.search(r"(?m)^6\s*$", printed), "the PII reader sees every country in clear"
    assert "Traceback" not in printed


def test_erase_walkthrough_erases_once_with_a_receipt_and_refuses_other_keys(demo, readme):
    walk, _ = demo
    (block,) = readme["erase"]
    printed = walk.run(block, timeout=300)
    assert re.search(r"erasure \w{16}-0 of customer_id sha256:\w{64}: [1-9]\d* rows deleted", printed)
    assert re.search(r"(?m)^0\s*$", printed), "trusted still holds the customer's events"
    assert "(1 rows)" in printed and "listed" in printed  # one receipt
    assert "erased before" in printed
    assert "not declared identifying" in printed and "refused (exit 2)" in printed


def test_replay_walkthrough_releases_the_fixed_rows_and_closes(demo, readme):
    walk, _ = demo
    (block,) = readme["replay"]
    printed = walk.run(block, timeout=300)
    first, second = re.findall(r"pending, (\d+) replayed", printed)
    assert int(first) > 0 and int(second) == 0
    assert printed.count("reconciled: yes") == 2 and "reconciled: NO" not in printed


@pytest.fixture
def fresh_walkthrough(tmp_path_factory, request) -> Iterator[Walkthrough]:
    yield from _walkthrough(tmp_path_factory, request.param)


@pytest.mark.aws
@pytest.mark.parametrize("fresh_walkthrough", ["local-aws"], indirect=True)
def test_local_aws_walkthrough_ingests_every_dataset_and_serves_the_ui(fresh_walkthrough, readme):
    walk = fresh_walkthrough
    printed = "".join(walk.run(block) for block in readme["local-aws"])
    assert re.search(r"(?m)^forwarded\s+\S+: [1-9]\d* records", printed), "order_events never reached Firehose"
    for dataset in ("customers", "products"):
        assert f"/landing/{dataset}/" in printed, f"{dataset} never landed"
    assert (walk.clone / ".medallion" / "local-aws" / ".dagster" / "dagster.yaml").exists()


@pytest.mark.databricks
@pytest.mark.slow
@pytest.mark.parametrize("fresh_walkthrough", ["local-databricks"], indirect=True)
def test_local_databricks_walkthrough_materializes_on_the_stand_in(fresh_walkthrough, readme):
    walk = fresh_walkthrough
    printed = "".join(walk.run(block, timeout=900) for block in readme["local-databricks"])
    assert "FAILED" not in printed
    assert "medallion.refined.daily_revenue" in printed and "rows)" in printed
