"""`colorgan bench speed` and `colorgan bench quality`: measured side by side, in one run.

Speed puts colorgan's real training loop next to a plain PyTorch loop over the same modules and
optimizer steps (the yardstick: what the framework costs), and both next to the device's own
matmul throughput (what the hardware could do). Everything runs on one device (`--device`, by
default the training default: CUDA when there is a GPU) under the precision training resolves for
it, so the ratio compares like with like. Quality trains for a wall-clock budget and scores the
held-out split with the same `evaluate` as `colorgan evaluate`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from colorgan import run_state
from colorgan.cpu_memory import keep_freed_memory
from colorgan.hardware import (Precision, bf16_is_native, compile_mode, measured_bf16_cost, memory_format, resolve_device,
                               resolve_precision)
from colorgan.recipe import Recipe

SPEED_FIELDS = ("device", "precision", "compile", "train_images_per_s", "reference_images_per_s", "ratio", "flops_per_image",
                "matmul_gflops_fp32_tf32", "matmul_gflops_bf16", "roofline_fraction",
                "sample_images_per_s_b1", "sample_images_per_s_b64", "peak_memory_mb", "torch", "threads")
"""Every field of `colorgan bench speed`, in order. `matmul_gflops_fp32_tf32` is an fp32 matmul as
the loop's fp32 runs it (TF32 where `precision` says tf32); `peak_memory_mb` is, on CUDA, what
colorgan's loop itself allocated on the device at most (max_memory_allocated), on the CPU the
process's peak resident set (ru_maxrss); `compile` is colorgan's loop's resolved `train.compile`
(the plain loop is always eager)."""


def _synchronize(device: torch.device) -> None:
    """CUDA runs asynchronously: a timed interval ends when the GPU has finished, not when it was queued."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rates(run: Callable[[], Any], items: int, repeats: int, device: torch.device, warmup: int = 2) -> list[float]:
    """Items per second of each of `repeats` timed calls of `run()` on `device`, after `warmup` calls."""
    for _ in range(warmup):
        run()
    _synchronize(device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        rates.append(items / (time.perf_counter() - start))
    return rates


def _median_rate(run: Callable[[], Any], items: int, repeats: int, device: torch.device) -> float:
    return statistics.median(_rates(run, items, repeats, device))


def matmul_gflops(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """The device's measured dense matmul throughput: the ceiling the loop is compared with.

    On CUDA n is 8192, enough to saturate the GPU (at 1024 it would time kernel launches); fp32
    matmuls there use TF32 when `resolve_precision` turned it on, as the loop's do.
    """
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    return _median_rate(lambda: torch.mm(a, b), 2 * n**3, repeats, device) / 1e9


def describe_device(device: torch.device) -> str:
    """The hardware behind the numbers: the GPU's name, or the CPU's model, whether bf16 is native and,
    where it is, its measured speed (the probe `auto` decides by: bf16 units can still be slower)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    if not bf16_is_native(device):
        return f"cpu {_cpu_model()} (native bf16: no)"
    return f"cpu {_cpu_model()} (native bf16: yes, a convolution {measured_bf16_cost(device):.2f}x its fp32 time)"


def _cpu_model() -> str:
    """/proc/cpuinfo's `model name` on Linux (platform.processor() there is only the architecture)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _parts_and_batch(recipe: Recipe):
    """The recipe's parts and one training batch, gathered as training gathers it."""
    from colorgan.build import build_parts, resolve_fill
    from colorgan.data import load_dataset
    from colorgan.data.device_batches import DeviceBatches

    torch.manual_seed(recipe.seed)
    data = load_dataset(recipe.data, recipe.seed)
    parts = build_parts(recipe, data.schema)
    rows = torch.arange(recipe.train.batch_size) % len(data.train)
    batches = DeviceBatches(data.train, parts.generator.encode, torch.device("cpu"), recipe.data.augment,
                            regions=parts.objective.needs_region)
    resolve_fill(recipe, parts, batches)  # the sampling figure fills as the trained model would
    return parts, batches.batch(rows)


def reference_step(recipe: Recipe, precision: Precision) -> tuple[Callable[[], None], Any, dict[str, Any]]:
    """The plain PyTorch training step on `precision.device`: same modules, losses and Adam steps,
    the same autocast and memory format as training; no Accelerate, no host sync.

    Returns the step and the parts and batch, moved to the device.
    """
    from colorgan.optim import adam
    from colorgan.step import StepModels, gan_losses, trained_losses

    device = precision.device
    layout = memory_format(recipe.train.channels_last, device)
    parts, batch = _parts_and_batch(recipe)
    G, D = (None if m is None else m.to(device, memory_format=layout).train()
            for m in (parts.generator, parts.discriminator))
    batch = {k: v.to(device, memory_format=layout if v.dim() == 4 else torch.preserve_format)
             for k, v in batch.items() if isinstance(v, torch.Tensor)}
    g_opt = adam(G.parameters(), recipe.optimizer, recipe.optimizer.lr, device)
    d_opt = None if D is None else adam(D.parameters(), recipe.optimizer, recipe.optimizer.d_lr or recipe.optimizer.lr,
                                        device)
    # The same losses as training's step (one function), on the plain modules: no DDP, no wrappers.
    models = StepModels(G, D, D, g_opt, d_opt, parts.loss, parts.objective)

    def step() -> None:
        with precision.autocast():
            losses = gan_losses(models, batch)
        for loss in trained_losses(models, losses):
            loss.backward()
        for _, optimizer in models.trained():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step, parts, batch


def flops_per_image(step: Callable[[], None], batch_size: int) -> float:
    """Forward + backward FLOPs of one training step (torch's counter), per image."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch_size


def _paired_rates(recipe: Recipe, steps: int, every: int, device: torch.device,
                  reference: Callable[[], float]) -> list[tuple[float, float]]:
    """colorgan's own loop (`train`) and the plain loop, interleaved: (colorgan's images/s over a
    logging interval, the plain loop's over `every` steps on either side of it), for each interval
    after the warm-up. `reference()` times the plain loop once; it runs before the loop and after
    each logging step, outside colorgan's timed intervals."""
    from colorgan.recipe import from_dict
    from colorgan.train import train

    timed = from_dict(recipe.to_dict(), [
        f"train.max_steps={steps}", f"train.log_every={every}", f"train.sample_every={10**9}",
        f"train.eval_every={10**9}", f"train.checkpoint_every={10**9}", "log.with=[jsonl]"])
    plain = [reference()]
    with tempfile.TemporaryDirectory() as tmp:
        train(timed, out=Path(tmp) / "run", device=device, after_log=lambda: plain.append(reference()))
        rates = [json.loads(line)["images_per_s"] for line in (Path(tmp) / "run" / "metrics.jsonl").open()
                 if "images_per_s" in line]
    pairs = [(rate, (before + after) / 2) for rate, before, after in zip(rates, plain, plain[1:])]
    # The first third warms up (at large sizes the allocator settles slowly); the last interval
    # ends with the final sample sheet and validation.
    return pairs[max(1, len(pairs) // 3):-1] or pairs


def _sampling_rate(generator, batch: dict[str, Any], size: int, repeats: int, precision: Precision) -> float:
    """Images/s of the generator in eval mode at batch `size` (the sketch batch repeated), as
    sampling runs it: on the batch's device, under the precision's autocast."""
    index = torch.arange(size, device=batch["sketch"].device) % batch["sketch"].shape[0]
    sketch, encoded = batch["sketch"][index], batch["cond"][index]
    generator.eval()

    def run() -> None:
        with torch.no_grad(), precision.autocast():
            generator(sketch, encoded)

    return _median_rate(run, size, repeats, precision.device)


def _with_peak_memory_mb(run: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """`run()`'s result and peak memory in MiB: on CUDA the most its own tensors held on the device
    (what was allocated before it does not count); on the CPU the process's peak resident set so far
    (all the CPU reports)."""
    if device.type != "cuda":
        result = run()
        return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = run()
    return result, (torch.cuda.max_memory_allocated(device) - before) / 2**20


def speed(recipe: Recipe, steps: int = 60, repeats: int = 5,
          device: str | torch.device | None = None) -> dict[str, Any]:
    """Every field of SPEED_FIELDS, measured on `device` (default: training's) for `recipe`'s model and size."""
    device = resolve_device(device)
    if device.type == "cpu":
        keep_freed_memory()  # as training does, before either loop runs: both meet the same allocator
    precision = resolve_precision(recipe.train.mixed_precision, device)
    step, parts, batch = reference_step(recipe, precision)
    b = recipe.train.batch_size
    flops = flops_per_image(step, b)
    # Both loops are timed over intervals of `every` steps, taking turns (the plain loop between
    # colorgan's logging steps), and the ratio is the median of each interval's ratio to the plain
    # loop on either side of it: a shared machine that speeds up or slows down for a few seconds
    # is then blamed on neither.
    every = max(2, steps // 10)

    def reference_rate() -> float:
        return _rates(lambda: [step() for _ in range(every)], b * every, 1, device, warmup=0)[0]

    for _ in range(2):  # warm-up: the flop count above was the first step
        step()

    pairs, peak_memory = _with_peak_memory_mb(lambda: _paired_rates(recipe, steps, every, device, reference_rate),
                                              device)
    loop = statistics.median(rate for rate, _ in pairs)
    reference = statistics.median(rate for _, rate in pairs)
    fp32, bf16 = matmul_gflops(torch.float32, device), matmul_gflops(torch.bfloat16, device)
    ceiling = bf16 if precision.mixed_precision == "bf16" else fp32
    result = {
        "device": describe_device(device),
        "precision": precision.name,
        "compile": compile_mode(recipe.train.compile, device, 1, recipe.train.grad_accum),
        "train_images_per_s": loop,
        "reference_images_per_s": reference,
        "ratio": statistics.median(rate / plain for rate, plain in pairs),
        "flops_per_image": flops,
        "matmul_gflops_fp32_tf32": fp32,
        "matmul_gflops_bf16": bf16,
        "roofline_fraction": loop * flops / (ceiling * 1e9),
        "sample_images_per_s_b1": _sampling_rate(parts.generator, batch, 1, repeats, precision),
        "sample_images_per_s_b64": _sampling_rate(parts.generator, batch, 64, repeats, precision),
        "peak_memory_mb": peak_memory,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return {k: result[k] for k in SPEED_FIELDS}


class TrainingInterrupted(Exception):
    """`quality`'s training was stopped by a signal before its budget ended: nothing was scored.
    `exit_code` is training's (130 for SIGINT, 143 for SIGTERM), which the CLI exits with."""

    def __init__(self, step: int, exit_code: int) -> None:
        super().__init__(f"interrupted at step {step}; nothing scored")
        self.step, self.exit_code = step, exit_code


def quality(recipe: Recipe, minutes: float, out: Path | None = None,
            device: str | torch.device | None = None) -> dict[str, Any]:
    """Train for `minutes` of wall-clock time on `device` (the recipe's `train.max_minutes`, replaced),
    then score the held-out split like `evaluate`."""
    from colorgan.evaluate import evaluate
    from colorgan.train import train

    device = resolve_device(device)  # a bad --device fails before any training
    with tempfile.TemporaryDirectory() as tmp:
        run = out or Path(tmp) / "run"
        started = time.perf_counter()
        budgeted = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, max_minutes=minutes))
        result = train(budgeted, out=run, device=device)
        if result.model is None:  # Ctrl-C / SIGTERM: training checkpointed and stopped; there is no model to score
            raise TrainingInterrupted(result.step, result.exit_code)
        elapsed = (time.perf_counter() - started) / 60
        world = run_state.read_run_info(run)["world_size"]
        scores = evaluate(result.model, split="test", device=device)
    scores.update(steps=result.step, minutes=elapsed,
                  images_seen=result.step * recipe.train.batch_size * recipe.train.grad_accum * world)
    return scores
