"""One training (micro-)batch of the conditional GAN.

The discriminator sees the real image and the detached generated one — each with the sketch and
the conditions, as the seed describes — and the generator is scored through the same, frozen
discriminator (GAN loss + L1 x weight). Both gradients are taken against the discriminator of
this step, and both optimizers step when the accumulation window closes. That makes
`grad_accum` micro-batches, or N processes, exactly one larger batch (pix2pix's alternating order,
where the generator sees the discriminator already updated on this batch, cannot be split so).

The frozen discriminator is the unwrapped module with `requires_grad=False`: the generator's
backward cannot leave gradients in the discriminator's accumulating `.grad`, and DDP's reducer of
the discriminator only ever sees its own backward.
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
    generator: Any             # prepared (DDP-wrapped when distributed)
    discriminator: Any         # prepared
    frozen_discriminator: Any  # the same discriminator, unwrapped
    g_optimizer: Any
    d_optimizer: Any
    g_scheduler: Any
    d_scheduler: Any
    loss: Any


def gan_step(accelerator, m: StepModels, batch: dict[str, Any], l1_weight: float, grad_clip: float | None,
             all_finite: Callable[[torch.Tensor], bool], skip_nonfinite: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """Losses, backward and (at the end of the accumulation window) both optimizer steps.

    Returns the losses as detached tensors (no host sync here beyond the finiteness check) and
    whether the batch was skipped for a non-finite loss.
    """
    sketch, target, encoded = batch["sketch"], batch["target"], batch["cond"]
    with accelerator.autocast():
        fake, cond = m.generator(sketch, encoded)
        cond = cond.detach()
        d_loss = m.loss.d_loss(m.discriminator(target, sketch, cond),
                               m.discriminator(fake.detach(), sketch, cond))
        m.frozen_discriminator.requires_grad_(False)
        try:
            g_gan = m.loss.g_loss(m.frozen_discriminator(fake, sketch, cond))
        finally:
            m.frozen_discriminator.requires_grad_(True)
        l1 = (fake.float() - target.float()).abs().mean()
        g_loss = g_gan + l1_weight * l1
    losses = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "g_gan": g_gan.detach(), "l1": l1.detach()}
    if not all_finite(torch.stack([losses["d_loss"].float(), losses["g_loss"].float()])):
        if not skip_nonfinite:
            bad = ", ".join(f"{k}={v.item()}" for k, v in losses.items())
            raise NonFiniteLoss(f"non-finite loss ({bad})")
        return losses, True
    accelerator.backward(d_loss)
    accelerator.backward(g_loss)
    for model, optimizer, scheduler in ((m.discriminator, m.d_optimizer, m.d_scheduler),
                                        (m.generator, m.g_optimizer, m.g_scheduler)):
        if grad_clip is not None and accelerator.sync_gradients:
            accelerator.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return losses, False
