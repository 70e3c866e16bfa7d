"""`colorgan bench serve`: N colour requests from K concurrent clients against a live server.

The server is the real `colorgan serve` in a child process on 127.0.0.1 (its memory is measured
apart from the clients'); each client keeps one HTTP connection and uploads an example sketch with
a different combination of attribute values each time, as a person trying colours would. Bounded
by `requests` and by `max_seconds`: it stops by itself and stops the server.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from colorgan.serve.process import ServerProcess


def multipart(fields: dict[str, str], sketch: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body (the fields plus `sketch` as an uploaded PNG) and its content type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\ncontent-disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\ncontent-disposition: form-data; name="sketch"; filename="sketch.png"\r\n'
                 f"content-type: image/png\r\n\r\n".encode() + sketch + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _bodies(url: str) -> list[tuple[bytes, str]]:
    """One request body per value combination of the served model (at most 64), round-robin."""
    model = json.loads(_get(f"{url}/api/models"))["models"][0]
    sketch = _get(f"{url}/api/examples/0.png")
    attributes = model["attributes"]
    count = min(64, int(np.prod([len(a["values"]) for a in attributes])))
    return [multipart({a["name"]: a["values"][i % len(a["values"])] for a in attributes}, sketch)
            for i in range(count)]


class _Load:
    """The shared request counter, latencies and errors of the client threads."""

    def __init__(self, port: int, bodies: list[tuple[bytes, str]], requests: int, deadline: float) -> None:
        self.port, self.bodies, self.requests, self.deadline = port, bodies, requests, deadline
        self.lock = threading.Lock()
        self.sent = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _next(self) -> int | None:
        with self.lock:
            if self.sent >= self.requests or time.monotonic() > self.deadline:
                return None
            self.sent += 1
            return self.sent - 1

    def client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while (i := self._next()) is not None:
            body, content_type = self.bodies[i % len(self.bodies)]
            start = time.perf_counter()
            try:
                connection.request("POST", "/api/colorize", body, {"content-type": content_type})
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException) as err:
                connection.close()
                ok, payload = False, str(err).encode()
            with self.lock:
                if ok:
                    self.latencies.append(time.perf_counter() - start)
                else:
                    self.errors.append(payload[:200].decode(errors="replace"))
        connection.close()


def bench_serve(model: Path, requests: int = 200, clients: int = 4, max_seconds: float = 300.0,
                device: str | None = None) -> dict[str, Any]:
    from colorgan.bench import describe_device
    from colorgan.hardware import resolve_device

    options = ("--device", device) if device else ()
    with ServerProcess([model], *options) as server:
        server_memory = psutil.Process(server.process.pid)
        bodies = _bodies(server.url)
        before = server_memory.memory_info().rss
        load = _Load(server.port, bodies, requests, time.monotonic() + max_seconds)
        threads = [threading.Thread(target=load.client) for _ in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        after = server_memory.memory_info().rss
    latencies = np.array(load.latencies or [float("nan")]) * 1000
    return {
        "machine": describe_device(resolve_device(device)),
        "cores": os.cpu_count(),
        "model": str(model),
        "requests": len(load.latencies) + len(load.errors),
        "clients": clients,
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(load.latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "errors": len(load.errors),
        "first_error": load.errors[0] if load.errors else None,
        "server_rss_before_mb": round(before / 2**20, 1),
        "server_rss_after_mb": round(after / 2**20, 1),
    }
