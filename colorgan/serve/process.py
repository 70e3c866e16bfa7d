"""`colorgan serve` as a child process on a free loopback port: what `colorgan bench serve` measures
and what the browser test opens. The child is the real command, so both see what a user would."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Sequence

from colorgan.errors import ColorganError


def free_port() -> int:
    """A port nothing listens on now (the OS picks it) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`with ServerProcess([model]) as server:` a running server at `server.url`; stopped on exit."""

    def __init__(self, models: Sequence[Path], *options: str, ready_timeout: float = 120.0) -> None:
        self.models, self.options, self.ready_timeout = [str(m) for m in models], options, ready_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerProcess":
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "colorgan", "serve", *self.models, "--port", str(self.port), *self.options]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ColorganError(f"colorgan serve exited with {self.process.returncode}: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/models", timeout=5):
                    return
            except OSError:
                time.sleep(0.2)
        raise ColorganError(f"colorgan serve did not answer within {self.ready_timeout:g} s: {self.output()[-2000:]}")

    def output(self) -> str:
        """Everything the server printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
