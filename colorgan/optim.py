"""Optimizers and learning-rate schedules from the recipe (Adam, as the seed and pix2pix)."""

from __future__ import annotations

import math

import torch

from colorgan.recipe import OptimizerConfig


def adam(params, cfg: OptimizerConfig, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with pix2pix's betas; fused kernels where torch has them (CPU and CUDA): ~1.2x per step."""
    fused = cfg.fused if cfg.fused != "auto" else device.type in ("cpu", "cuda")
    return torch.optim.Adam(list(params), lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                            fused=bool(fused))


def torch_optimizer(optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside Accelerate's wrapper (or the optimizer itself, unwrapped).

    The training step calls it directly once the accumulation window closes: without a grad scaler
    or XLA, the wrapper's `step` adds nothing but two look-ups of an optional package on disk
    (Accelerate 1.15's LOMO check: 30 µs each on this project's CPU, every call) and its `zero_grad` an
    `inspect.signature` — host time a launch-bound GPU step waits for.
    """
    return getattr(optimizer, "optimizer", optimizer)


class Horizon:
    """The scheduler step where the learning rate reaches its end, in the scheduler's own units.

    A run with a time budget (`train.max_minutes`, `colorgan bench quality --minutes`) moves it in
    at every logging step, to the step its measured pace reaches when the time is up, so that the
    decay finishes with the run: a schedule cut off half-way leaves the model at a high learning
    rate, where it has not settled. Not checkpointed: a resumed run measures its own pace, and
    follows the recipe's schedule until its first logging step.
    """

    def __init__(self, steps: int) -> None:
        self.steps = max(1, steps)


def lr_lambda(kind: str, horizon: Horizon, decay_start: float):
    """Factor of the base learning rate at a scheduler step, for a run that ends at `horizon`.

    constant: 1. linear: pix2pix's rule, 1 until `decay_start` of the run, then linearly to 0.
    cosine: half a cosine from 1 to 0 over the run. The horizon is read at every step (it may move).
    """

    def constant(step: int) -> float:
        return 1.0

    def linear(step: int) -> float:
        total = horizon.steps
        start = int(total * decay_start)
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, total - start))

    def cosine(step: int) -> float:
        total = horizon.steps
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    return {"constant": constant, "linear": linear, "cosine": cosine}[kind]
