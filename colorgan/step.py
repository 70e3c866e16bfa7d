"""One training step of the conditional GAN, as the seed describes it.

Discriminator first, on the real image and the detached generated one — each concatenated with
the sketch and the conditions — then the generator through a frozen discriminator: GAN loss +
L1 x weight. Both updates sit in one `accelerator.accumulate` context per batch; the frozen
discriminator is called unwrapped (outside DDP) with `requires_grad=False`, so no gradient of the
generator step can reach the discriminator's update, and DDP's reducer of the discriminator only
ever sees its own backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from colorgan.errors import ColorganError


class NonFiniteLoss(ColorganError):
    """A loss became NaN/Inf: the run stops before any update uses it."""


@dataclass
class StepModels:
    generator: Any          # prepared (DDP-wrapped when distributed)
    discriminator: Any      # prepared
    frozen_discriminator: Any  # the same discriminator, unwrapped
    g_optimizer: Any
    d_optimizer: Any
    g_scheduler: Any
    d_scheduler: Any
    loss: Any


def gan_step(accelerator, m: StepModels, batch: dict[str, Any], l1_weight: float, grad_clip: float | None,
             all_finite: Callable[[torch.Tensor], bool], skip_nonfinite: bool) -> dict[str, torch.Tensor]:
    """Run one (micro-)batch; returns the losses as tensors (no host sync here)."""
    sketch, target, encoded = batch["sketch"], batch["target"], batch["cond"]
    with accelerator.autocast():
        fake, cond = m.generator(sketch, encoded)
        cond_d = cond.detach()
        d_loss = m.loss.d_loss(m.discriminator(target, sketch, cond_d),
                               m.discriminator(fake.detach(), sketch, cond_d))
    skipped = _update(accelerator, d_loss, m.discriminator, m.d_optimizer, m.d_scheduler, grad_clip,
                      all_finite, skip_nonfinite, "discriminator")

    m.frozen_discriminator.requires_grad_(False)
    try:
        with accelerator.autocast():
            g_gan = m.loss.g_loss(m.frozen_discriminator(fake, sketch, cond_d))
            l1 = (fake.float() - target.float()).abs().mean()
            g_loss = g_gan + l1_weight * l1
        skipped |= _update(accelerator, g_loss, m.generator, m.g_optimizer, m.g_scheduler, grad_clip,
                           all_finite, skip_nonfinite, "generator")
    finally:
        m.frozen_discriminator.requires_grad_(True)
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "g_gan": g_gan.detach(),
            "l1": l1.detach(), "skipped": torch.tensor(float(skipped))}


def _update(accelerator, loss, model, optimizer, scheduler, grad_clip, all_finite, skip_nonfinite, name) -> bool:
    """Backward + (when the accumulation window closes) clip and step. True if the step was skipped."""
    if not all_finite(loss):
        if not skip_nonfinite:
            raise NonFiniteLoss(f"{name} loss is {loss.detach().float().item()}")
        optimizer.zero_grad(set_to_none=True)
        return True
    accelerator.backward(loss)
    if grad_clip is not None and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return False
