"""`colorgan bench speed` and `colorgan bench quality`: measured side by side, in one run.

Speed puts colorgan's real training loop next to a plain PyTorch loop over the same modules and
optimizer steps (the yardstick: what the framework costs), and both next to the machine's own
matmul throughput (what the hardware could do). Quality trains for a wall-clock budget and scores
the held-out split with the same `evaluate` as `colorgan evaluate`.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from colorgan.recipe import Recipe

SPEED_FIELDS = ("train_images_per_s", "reference_images_per_s", "ratio", "flops_per_image",
                "matmul_gflops_fp32", "matmul_gflops_bf16", "roofline_fraction",
                "sample_images_per_s_b1", "sample_images_per_s_b64", "peak_memory_mb", "torch", "threads")


def _rates(run: Callable[[], None], items: int, repeats: int, warmup: int = 2) -> list[float]:
    """Items per second of each of `repeats` timed calls of `run()`, after `warmup` calls."""
    for _ in range(warmup):
        run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(items / (time.perf_counter() - start))
    return rates


def _median_rate(run: Callable[[], None], items: int, repeats: int, warmup: int = 2) -> float:
    return statistics.median(_rates(run, items, repeats, warmup))


def matmul_gflops(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """The machine's measured dense matmul throughput: the ceiling the loop is compared with."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return _median_rate(lambda: torch.mm(a, b), 2 * n**3, repeats) / 1e9


def _parts_and_batch(recipe: Recipe):
    from colorgan.build import build_parts
    from colorgan.data import load_dataset, make_collate

    torch.manual_seed(recipe.seed)
    data = load_dataset(recipe.data, recipe.seed)
    parts = build_parts(recipe, data.schema)
    items = [data.train[i % len(data.train)] for i in range(recipe.train.batch_size)]
    return parts, make_collate(parts.generator.encode)(items)


def reference_step(recipe: Recipe) -> tuple[Callable[[], None], Any, dict[str, Any]]:
    """The plain PyTorch training step: same modules, losses and Adam steps; no Accelerate."""
    from colorgan.optim import adam

    parts, batch = _parts_and_batch(recipe)
    G, D, loss = parts.generator.train(), parts.discriminator.train(), parts.loss
    cpu = torch.device("cpu")
    g_opt = adam(G.parameters(), recipe.optimizer, recipe.optimizer.lr, cpu)
    d_opt = adam(D.parameters(), recipe.optimizer, recipe.optimizer.d_lr or recipe.optimizer.lr, cpu)
    sketch, target, encoded = batch["sketch"], batch["target"], batch["cond"]
    bf16 = recipe.train.mixed_precision == "bf16"

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            fake, cond = G(sketch, encoded)
            cond = cond.detach()
            d_loss = loss.d_loss(D(target, sketch, cond), D(fake.detach(), sketch, cond))
            D.requires_grad_(False)
            g_loss = loss.g_loss(D(fake, sketch, cond)) + recipe.train.l1_weight * (fake.float() - target).abs().mean()
            D.requires_grad_(True)
        d_loss.backward()
        g_loss.backward()
        d_opt.step()
        g_opt.step()
        d_opt.zero_grad(set_to_none=True)
        g_opt.zero_grad(set_to_none=True)

    return step, parts, batch


def flops_per_image(step: Callable[[], None], batch_size: int) -> float:
    """Forward + backward FLOPs of one training step (torch's counter), per image."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch_size


def _loop_rates(recipe: Recipe, steps: int, every: int) -> list[float]:
    """colorgan's own loop (`train`): images/s of each logging interval after the first (warm-up)."""
    from colorgan.recipe import from_dict
    from colorgan.train import train

    timed = from_dict(recipe.to_dict(), [
        f"train.max_steps={steps}", f"train.log_every={every}", f"train.sample_every={10**9}",
        f"train.eval_every={10**9}", f"train.checkpoint_every={10**9}", "log.with=[jsonl]"])
    with tempfile.TemporaryDirectory() as tmp:
        train(timed, out=Path(tmp) / "run")
        rates = [json.loads(line)["images_per_s"] for line in (Path(tmp) / "run" / "metrics.jsonl").open()
                 if "images_per_s" in line]
    # The first third warms up (at large sizes the allocator settles slowly); the last interval
    # ends with the final sample sheet and validation.
    return rates[max(1, len(rates) // 3):-1] or rates


def _sampling_rate(generator, batch: dict[str, Any], size: int, repeats: int) -> float:
    """Images/s of the generator in eval mode at batch `size` (the sketch batch repeated)."""
    index = torch.arange(size) % batch["sketch"].shape[0]
    sketch, encoded = batch["sketch"][index], batch["cond"][index]
    generator.eval()

    def run() -> None:
        with torch.no_grad():
            generator(sketch, encoded)

    return _median_rate(run, size, repeats)


def speed(recipe: Recipe, steps: int = 60, repeats: int = 5) -> dict[str, Any]:
    """Every field of SPEED_FIELDS, measured on this machine for `recipe`'s model and size."""
    step, parts, batch = reference_step(recipe)
    b = recipe.train.batch_size
    flops = flops_per_image(step, b)
    # Both loops are timed over intervals of `every` steps; the reference before and after
    # colorgan's loop, so a machine that speeds up or slows down meanwhile is not blamed on either.
    every = max(2, steps // 6)

    def reference_rates() -> list[float]:
        return _rates(lambda: [step() for _ in range(every)], b * every, repeats)

    before = reference_rates()
    loop = statistics.median(_loop_rates(recipe, steps, every))
    reference = statistics.median(before + reference_rates())
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    ceiling = bf16 if recipe.train.mixed_precision == "bf16" else fp32
    result = {
        "train_images_per_s": loop,
        "reference_images_per_s": reference,
        "ratio": loop / reference,
        "flops_per_image": flops,
        "matmul_gflops_fp32": fp32,
        "matmul_gflops_bf16": bf16,
        "roofline_fraction": loop * flops / (ceiling * 1e9),
        "sample_images_per_s_b1": _sampling_rate(parts.generator, batch, 1, repeats),
        "sample_images_per_s_b64": _sampling_rate(parts.generator, batch, 64, repeats),
        "peak_memory_mb": _peak_memory_mb(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return {k: result[k] for k in SPEED_FIELDS}


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def quality(recipe: Recipe, minutes: float, out: Path | None = None) -> dict[str, Any]:
    """Train for `minutes` of wall-clock time, then score the held-out split like `evaluate`."""
    from colorgan.evaluate import evaluate
    from colorgan.train import train

    with tempfile.TemporaryDirectory() as tmp:
        run = out or Path(tmp) / "run"
        started = time.perf_counter()
        result = train(recipe, out=run, time_limit=minutes * 60)
        elapsed = (time.perf_counter() - started) / 60
        world = json.loads((run / "run.json").read_text())["world_size"]
        scores = evaluate(result.model, split="test")
    scores.update(steps=result.step, minutes=elapsed,
                  images_seen=result.step * recipe.train.batch_size * recipe.train.grad_accum * world)
    return scores
