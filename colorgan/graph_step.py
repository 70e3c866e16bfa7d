"""`train.compile: graph`: the whole training step captured once as a CUDA graph and replayed.

The seed net at batch 1 is launch-bound on a GPU: its eager step queues well over a thousand
kernels from Python for a few milliseconds of GPU work (H100: 51 steps/s; torch.compile's CUDA
graphs of each model, `reduce-overhead`, 133 steps/s after a 36 s compile). Captured whole —
gather and augmentation, both forwards and backwards, the non-finite guard and both fused Adam
updates — a step is one graph launch and needs no compiler (PyTorch's "whole-network capture",
torch.cuda.graph): 258 steps/s on that H100, the seed recipe's 50 epochs in about a minute.

What makes the step capturable:
- the rows arrive in one static device tensor, copied in before each replay;
- fused Adam is captured with `capturable=True` and its learning rate in a device tensor, which is
  refilled before a replay when a schedule has moved the group's (float) lr; outside the capture
  the groups are untouched, so schedulers, logs and checkpoints are those of an eager run;
- autocast runs without its cast cache (`Precision.autocast_cache`: casts cached during capture
  would be freed after it);
- dropout and augmentation draw from the default CUDA generator, which a graph advances per replay;
- the guard's flag and the losses are the graph's outputs, overwritten by each replay: they are
  copied into the guard's record right after it.

The first WARMUP_STEPS steps run eagerly on a side stream (optimizer state is created, cuDNN and
cuBLAS settle), as torch.cuda.graph asks; the next step is captured, then replayed. Every step
trains. Python-side state that changes from step to step inside the step (a counter in a plugin
loss) is frozen at capture: such a plugin must keep its state in device tensors.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

from colorgan.guard import NonFiniteGuard
from colorgan.optim import torch_optimizer

WARMUP_STEPS = 3


class GraphedStep:
    """`step(rows, number)` -> the losses: `run_step`, the eager training step, run eagerly for the
    warm-up, then captured once and replayed with each step's rows."""

    def __init__(self, run_step: Callable[[torch.Tensor, int], torch.Tensor], optimizers, guard: NonFiniteGuard,
                 device: torch.device) -> None:
        self.run_step, self.guard, self.device = run_step, guard, device
        self.optimizers = [torch_optimizer(o) for o in optimizers]
        self.warmed = 0
        self.side = torch.cuda.Stream(device)  # where the warm-up steps run
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, rows: torch.Tensor, step: int) -> torch.Tensor:
        if self.graph is None and self.warmed < WARMUP_STEPS:
            self.warmed += 1
            self.side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.side):
                losses = self.run_step(rows, step)
            torch.cuda.current_stream(self.device).wait_stream(self.side)
            return losses
        if self.graph is None:
            self._capture(rows, step)
        for rate in self.learning_rates:
            rate.follow()
        self.rows.copy_(rows, non_blocking=True)
        self.graph.replay()
        losses = self.losses.clone()
        self.guard.record(step, self.found.clone(), losses)
        return losses

    def _capture(self, rows: torch.Tensor, step: int) -> None:
        self.rows = rows.clone()
        graph = torch.cuda.CUDAGraph()
        with _capturable(self.optimizers, self.device) as self.learning_rates, torch.cuda.graph(graph):
            self.losses = self.run_step(self.rows, step)
        # Capture ran no kernel: the record the guard made holds the tensors each replay refills.
        self.found, _ = self.guard.take_last()
        self.graph = graph


@dataclass
class _DeviceRate:
    """A parameter group's learning rate as the captured optimizer reads it: a device tensor."""

    group: dict
    tensor: torch.Tensor
    value: float

    def follow(self) -> None:
        """Refill the tensor when a schedule has moved the group's lr (no launch otherwise)."""
        if self.group["lr"] != self.value:
            self.value = self.group["lr"]
            self.tensor.fill_(self.value)


@contextlib.contextmanager
def _capturable(optimizers, device: torch.device):
    """Fused Adam as a graph can replay it, while it is captured: `capturable`, and each group's
    learning rate in a device tensor (yielded with its group) that the replays keep equal to the
    group's float. Afterwards the groups are as before: schedulers, checkpoints and the state dict
    see a float lr and `capturable: False`, as in an eager run."""
    groups = [group for optimizer in optimizers for group in optimizer.param_groups]
    before = [(group["lr"], group["capturable"]) for group in groups]
    rates = [_DeviceRate(group, torch.tensor(float(group["lr"]), device=device), group["lr"]) for group in groups]
    for rate in rates:
        rate.group.update(lr=rate.tensor, capturable=True)
    try:
        yield rates
    finally:
        for group, (lr, capturable) in zip(groups, before):
            group.update(lr=lr, capturable=capturable)
