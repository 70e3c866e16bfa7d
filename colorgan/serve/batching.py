"""Colouring requests that wait for the same model are coloured together, in one generator call.

A generator call on a batch costs little more than on one image (the quickstart's generator on
2 CPU cores: ~110 images/s at batch 1, ~1100 at batch 64), so while the model is busy the
requests that arrive queue up, and whichever of them next holds the model's lock colours the
queue, oldest first, in one call. There is no thread of its own and no timer: a request that
finds the model free is coloured at once, as before; only requests that would have waited anyway
are grouped. A batch holds at most `max_batch` sketches and, after the first, no more source
pixels than one upload may have (`uploads.MAX_PIXELS`), so the image work in memory at once stays
about one large request's worth, as it was when requests took turns.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from colorgan.inference import Colorizer
from colorgan.serve.uploads import MAX_PIXELS

MAX_BATCH = 16


@dataclass
class _Request:
    sketch: Callable[[], Image.Image]      # decodes the upload or example, in the batch's thread
    conditions: dict[str, str]
    image: Image.Image | None = None       # the decoded sketch, once decoded
    result: Future = field(default_factory=Future)


class Batcher:
    """`colorize(sketch, conditions)`, callable from many threads at once, for one model."""

    def __init__(self, colorizer: Colorizer, lock: threading.Lock, max_batch: int = MAX_BATCH,
                 max_pixels: int = MAX_PIXELS) -> None:
        self.colorizer, self.lock = colorizer, lock   # `lock`: the model's, which sweeps hold too
        self.max_batch, self.max_pixels = max_batch, max_pixels
        self._queue: deque[_Request] = deque()
        self._queue_lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Requests waiting for the model now."""
        with self._queue_lock:
            return len(self._queue)

    def colorize(self, sketch: Callable[[], Image.Image], conditions: dict[str, str]) -> Image.Image:
        """The coloured sketch; blocks until it is drawn, by this thread or one that batched it.
        Conditions are checked by the caller: a batch fails together only for a fault of the model's."""
        request = _Request(sketch, conditions)
        with self._queue_lock:
            self._queue.append(request)
        while not request.result.done():  # not done: it is still queued (a holder of the lock finishes its batch)
            with self.lock:
                if not request.result.done():
                    self._colour(self._next_batch())
        return request.result.result()

    def _next_batch(self) -> list[_Request]:
        """Queued requests, oldest first, within the limits, their sketches decoded. A sketch that
        cannot be decoded fails its own request only; one that would break the pixel limit waits,
        decoded, at the head of the queue for the next batch."""
        batch: list[_Request] = []
        pixels = 0
        while len(batch) < self.max_batch:
            with self._queue_lock:
                if not self._queue:
                    break
                request = self._queue.popleft()
            try:
                if request.image is None:  # not decoded yet (one put back after a full batch is)
                    request.image = request.sketch()
            except Exception as err:  # noqa: BLE001 - the request's own error (a bad upload), raised in its own thread
                request.result.set_exception(err)
                continue
            size = request.image.width * request.image.height
            if batch and pixels + size > self.max_pixels:
                with self._queue_lock:
                    self._queue.appendleft(request)
                break
            batch.append(request)
            pixels += size
        return batch

    def _colour(self, batch: list[_Request]) -> None:
        """One generator call for the batch; every request in it ends with its image or the error."""
        if not batch:
            return
        try:
            images = self.colorizer.colorize([r.image for r in batch], [r.conditions for r in batch],
                                             batch_size=len(batch))
        except Exception as err:  # noqa: BLE001 - the model's fault, not a request's: each of the batch reports it
            for r in batch:
                r.result.set_exception(err)
        else:
            for r, image in zip(batch, images):
                r.result.set_result(image)
        finally:  # an interrupt must not leave the batch's other threads waiting for ever
            for r in batch:
                r.image = None
                if not r.result.done():
                    r.result.set_exception(RuntimeError("colouring was interrupted"))
