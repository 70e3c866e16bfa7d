"""One training (micro-)batch of the conditional GAN.

The discriminator sees the real image and the detached generated one — each with the sketch and
the conditions, as the seed describes — and the generator is scored through the same, frozen
discriminator, by the recipe's objective (`colorgan.objective`: GAN + 100 x L1 in the seed).
Both gradients are taken against the discriminator of this step, and both optimizers step when
the accumulation window closes. That makes `grad_accum` micro-batches, or N processes, exactly
one larger batch (pix2pix's alternating order, where the generator sees the discriminator already
updated on this batch, cannot be split so).

The frozen discriminator is the unwrapped module with `requires_grad=False`: the generator's
backward cannot leave gradients in the discriminator's accumulating `.grad`, and DDP's reducer of
the discriminator only ever sees its own backward.

Nothing here waits for the device: losses stay tensors and a non-finite loss is caught by the
device-side guard (`colorgan.guard`), not by reading it on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from colorgan.guard import NonFiniteGuard, apply_guard
from colorgan.hardware import Precision
from colorgan.objective import Objective
from colorgan.optim import torch_optimizer
from colorgan.registry.objectives import ObjectiveInputs, discriminator_features


@dataclass
class StepModels:
    generator: Any             # prepared (DDP-wrapped when distributed)
    discriminator: Any         # prepared; None when the objective reads none (`build_parts`)
    frozen_discriminator: Any  # the same discriminator, unwrapped (or None)
    g_optimizer: Any
    d_optimizer: Any           # None without a discriminator
    loss: Any                  # the adversarial loss (d_loss / g_loss on logits)
    objective: Objective       # the generator's weighted terms

    def trained(self) -> list[tuple[Any, Any]]:
        """(model, optimizer) of each network that trains, the discriminator first when there is one."""
        pairs = [(self.discriminator, self.d_optimizer), (self.generator, self.g_optimizer)]
        return [(model, optimizer) for model, optimizer in pairs if model is not None]


def gan_losses(m: StepModels, batch: dict[str, Any]) -> list[torch.Tensor]:
    """Forward of the models and every loss, in `loss_names` order: [d_loss, g_loss, *each objective
    term], without d_loss when there is no discriminator (the objective reads none: on a CPU its
    three passes are about half of a step). Run it inside the precision's autocast."""
    sketch, target, encoded = batch["sketch"], batch["target"], batch["cond"]
    fake, cond = m.generator(sketch, encoded)
    cond = cond.detach()
    if m.discriminator is None:
        g_loss, terms = m.objective(ObjectiveInputs(fake, target, sketch, cond, None, m.loss, batch.get("region")))
        return [g_loss, *terms]
    d_loss = m.loss.d_loss(m.discriminator(target, sketch, cond), m.discriminator(fake.detach(), sketch, cond))
    m.frozen_discriminator.requires_grad_(False)
    try:
        inputs = ObjectiveInputs(fake, target, sketch, cond, m.frozen_discriminator(fake, sketch, cond), m.loss,
                                 batch.get("region"), discriminator_features(m.frozen_discriminator, sketch, cond))
        g_loss, terms = m.objective(inputs)
    finally:
        m.frozen_discriminator.requires_grad_(True)
    return [d_loss, g_loss, *terms]


def trained_losses(m: StepModels, losses: list[torch.Tensor]) -> list[torch.Tensor]:
    """The losses to take gradients of: d_loss and g_loss, or g_loss alone without a discriminator."""
    return losses[:2] if m.discriminator is not None else losses[:1]


def loss_names(objective: Objective) -> tuple[str, ...]:
    """The names of `gan_losses`' values, as logged: d_loss only where a discriminator is built
    (`build_parts`: where the objective reads one)."""
    return ("d_loss", "g_loss", *objective.log_keys) if objective.needs_discriminator else ("g_loss", *objective.log_keys)


def gan_step(accelerator, m: StepModels, batch: dict[str, Any], precision: Precision,
             grad_clip: float | None, guard: NonFiniteGuard, step: int) -> torch.Tensor:
    """Losses, backward and, when the accumulation window closes, each optimizer's step (the
    schedulers are the loop's: a step captured as a CUDA graph must not hold them).

    `step` is the optimizer step this micro-batch belongs to (for the guard's record). Returns the
    losses (`loss_names` order) as one detached float tensor, still on the device.
    """
    with precision.autocast():
        losses = gan_losses(m, batch)
    stacked = torch.stack([v.detach().float() for v in losses])
    guard.observe(stacked)
    for loss in trained_losses(m, losses):
        accelerator.backward(loss)
    if accelerator.sync_gradients:
        found = guard.close_window(step)
        apply = True
        for model, optimizer in m.trained():
            if grad_clip is not None:
                accelerator.clip_grad_norm_(model.parameters(), grad_clip)
            apply = apply_guard(optimizer, found) and apply
        for optimizer in (torch_optimizer(o) for _, o in m.trained()):
            if apply:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return stacked
