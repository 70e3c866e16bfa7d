"""The non-finite guard: a NaN/Inf loss never updates the weights, and the host looks only at log time.

Checking `loss.isfinite().item()` every step makes the host wait for the GPU every step (the
issue measured it as the loop's main stall). Instead the step computes a device-side flag,
`found_inf`, that fused Adam reads on the device: with the flag set its kernel leaves parameters,
moments and step count untouched. The flags of the steps since the last look are kept on the
device and read in one transfer at logging, checkpoint and final steps (`read`), where the run
stops naming the first bad step (or, with `train.skip_nonfinite`, logs the skipped ones).

A non-fused optimizer has no `found_inf`: then the flag is read at once, every step (a host
sync, but the same guarantee).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from colorgan.errors import ColorganError
from colorgan.optim import torch_optimizer


class NonFiniteLoss(ColorganError):
    """A loss became NaN/Inf: the run stops; no update used it."""


@dataclass
class NonFiniteGuard:
    names: tuple[str, ...] = ("d_loss", "g_loss")  # of the observed losses; those up to g_loss are judged
    reduce: object = None  # callable(tensor) -> tensor summed over ranks, or None in one process
    _window: torch.Tensor | None = None
    _last: torch.Tensor | None = None
    _pending: list[tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._judged = self.names.index("g_loss") + 1  # the losses up to g_loss, counted once

    def observe(self, losses: torch.Tensor) -> None:
        """Add one micro-batch's losses (d_loss when there is a discriminator, g_loss, then the
        objective's terms, which g_loss sums) to the accumulation window."""
        bad = ~torch.isfinite(losses[:self._judged]).all()
        self._window = bad if self._window is None else self._window | bad
        self._last = losses

    def close_window(self, step: int) -> torch.Tensor:
        """The window's flag as fused Adam's `found_inf` (float 0/1, equal on every rank)."""
        found = self._window.float()
        if self.reduce is not None:
            found = (self.reduce(found) > 0).float()
        self._window = None
        self.record(step, found, self._last)
        return found

    def record(self, step: int, found: torch.Tensor, losses: torch.Tensor) -> None:
        """Keep a closed window's flag and losses until the next `read`."""
        self._pending.append((step, found, losses))

    def take_last(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Withdraw the last record (flag, losses): a captured CUDA graph's step made it without
        running, and refills those tensors at each replay (`colorgan.graph_step`)."""
        _, found, losses = self._pending.pop()
        return found, losses

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """The non-finite steps since the last read, with their losses: one device-to-host copy."""
        if not self._pending:
            return []
        flags = torch.stack([f for _, f, _ in self._pending]).cpu()
        bad = [(step, losses) for (step, _, losses), flag in zip(self._pending, flags) if flag]
        self._pending.clear()
        return [(step, dict(zip(self.names, losses.float().cpu().tolist()))) for step, losses in bad]


def apply_guard(optimizer, found: torch.Tensor) -> bool:
    """Hand `found` to the optimizer; False when it must be skipped on the host (non-fused)."""
    inner = torch_optimizer(optimizer)
    if all(group.get("fused") for group in inner.param_groups):
        inner.found_inf = found
        return True
    return not bool(found.item())
