"""Long-running commands in tests: started in their own process group on 127.0.0.1, probed, always stopped.

Every wait is bounded; a server that dies or never answers fails the test with the tail of its own log.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Server", "free_port", "wait_for_http"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A command (`bash -c` text or an argv) in a new session, its output in `log`; `stop()` ends its group."""

    def __init__(
        self, command: str | Sequence[str], *, log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def tail(self, lines: int = 30) -> str:
        """The last lines the command printed."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the whole process group (webserver, daemon, code servers), SIGKILL after `grace` s."""
        for sig, wait in ((signal.SIGINT, grace / 2), (signal.SIGTERM, grace / 2), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.process.poll() is not None and not _group_alive(self.process.pid):
                    return
                time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_http(url: str, *, timeout: float, server: Server | None = None) -> None:
    """Polls `url` until it answers 200; fails with the server's log if it died or `timeout` s passed."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server is not None and not server.alive():
            raise AssertionError(f"server exited ({server.process.returncode}) before {url} answered:\n{server.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    tail = server.tail() if server is not None else ""
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s ({last}):\n{tail}")
