"""`colorgan serve`: load the models named on the command line, then run the app under uvicorn."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from colorgan.errors import ColorganError

EXTRA = ("starlette", "uvicorn", "python_multipart")


def check_extra() -> None:
    """A clear line instead of an ImportError when the `serve` extra is not installed."""
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise ColorganError(f"colorgan serve needs {', '.join(missing)}: pip install 'colorgan[serve]'")


def serve(paths: list[Path], host: str = "127.0.0.1", port: int = 7860, device: str | None = None,
          max_upload_bytes: int | None = None, max_model_gb: float | None = None) -> None:
    check_extra()
    import uvicorn

    from colorgan.serve.app import MAX_UPLOAD_BYTES, create_app
    from colorgan.serve.guards import allowed_hosts
    from colorgan.serve.models import load_models

    models = load_models(paths, device, max_model_gb)
    app = create_app(models, host, max_upload_bytes or MAX_UPLOAD_BYTES)
    if allowed_hosts(host) == ["*"]:
        print(f"colorgan serve: listening on {host}: anyone who can reach this machine can use it")
    shown = f"[{host}]" if ":" in host else host
    print(f"colorgan serve: {', '.join(models)} at http://{shown}:{port} (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
