"""Real service processes for integration and e2e tests: start, wait ready, stop, kill, freeze."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    """One console script of ours (e.g. `catalog-api`) running as a child process."""

    def __init__(self, script: str, env: dict[str, str], ready_url: str | None = None) -> None:
        self.script = script
        self.env = env
        self.ready_url = ready_url
        self.popen: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"{script}-", suffix=".log")[1])

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [str(BIN / self.script)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.ready_url:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        assert self.ready_url is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.script} exited early:\n{self.output()}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.script} not ready after {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        self.thaw()  # a frozen process handles SIGTERM only once it runs again
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: it keeps its sockets and connections and answers nothing until `thaw`."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def close(self) -> None:
        self.kill()
        self.log.unlink(missing_ok=True)
