"""The Starlette app: the page (static files) and the JSON/PNG API.

    GET  /api/models                  each model's attributes, controls, components, size
    GET  /api/examples?model=M        example sketches: [{id, name, url}]
    GET  /api/examples/{id}.png       one example sketch
    POST /api/colorize                form: sketch (upload) or example (id), one field per
                                      attribute, model (when several) -> PNG
    POST /api/sweep                   the same, plus sweep (one or two attributes) -> grid PNG

Bad input is one line, `{"error": "..."}`, with 400 (413 for a body over the upload limit); the
server goes on serving. Image work runs in worker threads (never on the event loop), each model's
under its lock; everything that can be checked without image work is checked first.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import quote

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from colorgan.data.images import open_image
from colorgan.errors import ColorganError
from colorgan.serve.guards import BodyLimit, SecurityHeaders, allowed_hosts
from colorgan.serve.models import FORM_FIELDS, ServedModel, pick
from colorgan.serve.uploads import decode_upload

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 10_000_000
MAX_SWEEP_TILES = 400
"""A sweep draws one image per value combination: refused beyond this many (a 20 x 20 grid)."""


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"cache-control": "no-store"})


@dataclass
class Job:
    """One colouring request, read and checked: which model, which sketch, which conditions."""

    model: ServedModel
    sketch: Callable[[], Image.Image]   # decodes the upload or example (in a worker thread)
    conditions: dict[str, str]
    sweep: list[str]

    def run(self) -> bytes:
        """The coloured image (or sweep grid) as a PNG; only the model's work holds its lock (a
        single image is coloured together with the others waiting for it: `batching`)."""
        if not self.sweep:
            return png(self.model.batcher.colorize(self.sketch, self.conditions))
        with self.model.lock:
            image = self.model.colorizer.sweep(self.sketch(), *self.sweep, conditions=self.conditions)
        return png(image)


class Api:
    def __init__(self, models: Mapping[str, ServedModel], max_upload_bytes: int) -> None:
        self.models, self.max_upload_bytes = models, max_upload_bytes

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"models": [m.describe() for m in self.models.values()],
                             "max_upload_bytes": self.max_upload_bytes})

    async def list_examples(self, request: Request) -> Response:
        model = pick(self.models, request.query_params.get("model"))
        query = f"?model={quote(model.name)}"
        return JSONResponse({"model": model.name, "source": model.examples.source, "examples": [
            {"id": str(i), "name": name, "url": f"/api/examples/{i}.png{query}"}
            for i, name in enumerate(model.examples.names())]})

    async def example_png(self, request: Request) -> Response:
        model = pick(self.models, request.query_params.get("model"))
        example = model.examples.path(request.path_params["example"])
        return png_response(await run_in_threadpool(lambda: png(open_image(example))))

    async def colorize(self, request: Request) -> Response:
        return png_response(await run_in_threadpool((await self.read_job(request, sweep=False)).run))

    async def sweep(self, request: Request) -> Response:
        return png_response(await run_in_threadpool((await self.read_job(request, sweep=True)).run))

    async def read_job(self, request: Request, sweep: bool) -> Job:
        """The form as a Job; every check that needs no image work is done here, first."""
        form = await request.form(max_files=1, max_fields=64)
        model = pick(self.models, form.get("model") or None)
        conditions = {}
        for key, value in form.multi_items():
            if key in FORM_FIELDS or value == "":
                continue
            if not isinstance(value, str):
                raise ColorganError(f"attribute {key!r}: expected a value, got a file")
            conditions[key] = value
        model.colorizer.check_given(conditions)
        attributes = form.getlist("sweep") if sweep else []
        if sweep:
            tiles = len(model.colorizer.sweep_conditions(attributes, conditions))
            if tiles > MAX_SWEEP_TILES:
                raise ColorganError(f"sweep: {tiles} images asked for, at most {MAX_SWEEP_TILES}")
        else:
            model.colorizer.encode([conditions])  # a missing attribute, before any image work
        return Job(model, await read_sketch(form, model), conditions, attributes)


async def read_sketch(form, model: ServedModel) -> Callable[[], Image.Image]:
    upload, example = form.get("sketch"), form.get("example")
    if isinstance(upload, UploadFile) and upload.filename:
        if example:
            raise ColorganError("give a sketch or an example, not both")
        data, name = await upload.read(), upload.filename
        return lambda: decode_upload(data, name)
    if example:
        path = model.examples.path(example)
        return lambda: open_image(path)
    raise ColorganError(f"no sketch: upload an image (field 'sketch') or pick an example "
                        f"(field 'example', 0..{len(model.examples.paths) - 1})")


async def bad_input(request: Request, err: Exception) -> Response:
    return JSONResponse({"error": str(err)}, 400)


async def http_error(request: Request, err: HTTPException) -> Response:
    return JSONResponse({"error": err.detail}, err.status_code, headers=err.headers)


def create_app(models: Mapping[str, ServedModel], host: str = "127.0.0.1",
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> Starlette:
    api = Api(models, max_upload_bytes)
    routes = [
        Route("/api/models", api.list_models),
        Route("/api/examples", api.list_examples),
        Route("/api/examples/{example}.png", api.example_png),
        Route("/api/colorize", api.colorize, methods=["POST"]),
        Route("/api/sweep", api.sweep, methods=["POST"]),
        Mount("/", StaticFiles(directory=STATIC, html=True)),
    ]
    middleware = [Middleware(SecurityHeaders),
                  Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host)),
                  Middleware(BodyLimit, limit=max_upload_bytes)]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={ColorganError: bad_input, HTTPException: http_error})
