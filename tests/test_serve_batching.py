"""Requests that wait for the same model are coloured together (`colorgan.serve.batching`): one
generator call for the queue, each request its own image, exactly as colouring it alone; the
limits on a batch; a bad sketch fails its own request, a model error the batch's, and the model
goes on serving."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from colorgan.errors import DataError
from colorgan.inference import Colorizer
from colorgan.serve.batching import Batcher
from hardening_helpers import tiny_model_file

HAIR, SHIRT = ["blue", "crimson", "darkgreen", "deepskyblue", "gold"], ["darkslateblue", "olive", "violet"]


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory):
    return Colorizer.load(tiny_model_file(tmp_path_factory.mktemp("batching")), device="cpu")


@pytest.fixture
def calls(colorizer, monkeypatch):
    """The batch size of every generator call."""
    sizes: list[int] = []
    generate = colorizer.generate

    def counted(sketches, conditions):
        sizes.append(len(sketches))
        return generate(sketches, conditions)

    monkeypatch.setattr(colorizer, "generate", counted)
    return sizes


def sketch(i: int, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray((rng.random((size, size)) > 0.2).astype(np.uint8) * 255, "L")


def requests(n: int) -> list[tuple[Image.Image, dict[str, str]]]:
    return [(sketch(i, 24 + 8 * (i % 3)), {"hair": HAIR[i % 5], "shirt": SHIRT[i % 3]}) for i in range(n)]




def run_queued(batcher: Batcher, jobs) -> list:
    """Start every job while the model is busy (its lock held here), free it once all are queued;
    each job's image, or the error it raised."""
    pool = ThreadPoolExecutor(len(jobs))

    def ask(job):
        loader, conditions = job
        try:
            return batcher.colorize(loader, conditions)
        except Exception as err:  # noqa: BLE001 - the request's outcome
            return err

    batcher.lock.acquire()
    try:
        futures = [pool.submit(ask, job) for job in jobs]
        deadline = time.monotonic() + 30
        while batcher.queued < len(jobs):
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.01)
    finally:
        batcher.lock.release()
    outcomes = [f.result(timeout=60) for f in futures]
    pool.shutdown()
    return outcomes


def test_waiting_requests_are_coloured_in_one_call_each_as_if_alone(colorizer, calls):
    jobs = requests(7)
    alone = [np.asarray(colorizer.colorize(image, conditions)) for image, conditions in jobs]
    calls.clear()
    batcher = Batcher(colorizer, threading.Lock())
    images = run_queued(batcher, [(lambda image=image: image, conditions) for image, conditions in jobs])
    assert calls == [7]
    for got, want, (image, _) in zip(images, alone, jobs):
        assert got.size == image.size and np.array_equal(np.asarray(got), want)


def test_a_request_that_finds_the_model_free_is_coloured_at_once(colorizer, calls):
    batcher = Batcher(colorizer, threading.Lock())
    for image, conditions in requests(3):
        batcher.colorize(lambda image=image: image, conditions)
    assert calls == [1, 1, 1] and batcher.queued == 0


def test_a_batch_keeps_to_its_size_and_pixel_limits(colorizer, calls):
    jobs = [(lambda i=i: sketch(i), {"hair": "gold", "shirt": "olive"}) for i in range(5)]
    run_queued(Batcher(colorizer, threading.Lock(), max_batch=2), jobs)
    assert calls == [2, 2, 1]
    calls.clear()
    big = [(lambda: sketch(0, 40), {"hair": "gold", "shirt": "olive"})] * 3  # 1600 px each
    outcomes = run_queued(Batcher(colorizer, threading.Lock(), max_pixels=3500), big)
    assert calls == [2, 1] and all(isinstance(o, Image.Image) for o in outcomes)
    calls.clear()
    outcomes = run_queued(Batcher(colorizer, threading.Lock(), max_pixels=1000), big)  # each alone, still served
    assert calls == [1, 1, 1] and all(o.size == (40, 40) for o in outcomes)


def test_a_bad_sketch_fails_its_own_request_only(colorizer, calls):
    def bad():
        raise DataError("upload 'x.png': not an image Pillow can read")

    jobs = requests(3)
    outcomes = run_queued(Batcher(colorizer, threading.Lock()),
                          [(lambda image=image: image, c) for image, c in jobs[:2]] + [(bad, jobs[2][1])])
    assert calls == [2]
    assert [type(o) for o in outcomes] == [Image.Image, Image.Image, DataError]


def test_a_model_error_fails_the_batch_and_the_model_goes_on_serving(colorizer, monkeypatch):
    generate = colorizer.generate
    failures = iter([RuntimeError("out of memory")])

    def fails_once(sketches, conditions):
        for err in failures:
            raise err
        return generate(sketches, conditions)

    monkeypatch.setattr(colorizer, "generate", fails_once)
    batcher = Batcher(colorizer, threading.Lock())
    jobs = [(lambda image=image: image, c) for image, c in requests(3)]
    assert [str(o) for o in run_queued(batcher, jobs)] == ["out of memory"] * 3
    assert all(isinstance(o, Image.Image) for o in run_queued(batcher, jobs))
