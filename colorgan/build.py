"""Recipe + condition schema -> the modules of a run, all through the registries.

The condition encoder travels with the generator (`ConditionalGenerator`): it is trained by the
generator's loss, exported in the same model file, and one `forward` call lets DDP see both.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Sequence, Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from colorgan.data import images
from colorgan.data.device_batches import DeviceBatches
from colorgan.data.schema import ConditionSchema
from colorgan.objective import Objective
from colorgan.recipe import Recipe
from colorgan.registry.generators.region_fill import SUITED_FILL_DB, fill_fidelity_db


class ConditionalGenerator(nn.Module):
    """Condition encoder + generator: `(sketch, encoded conditions) -> (image, condition vector)`."""

    def __init__(self, condition: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.condition = condition
        self.net = net

    def encode(self, conditions: Sequence[Mapping[str, str | None]]) -> torch.Tensor:
        """Host side: a batch of `{attribute: value}` dicts -> the encoder's input tensor."""
        return self.condition.encode(conditions)

    def forward(self, sketch: torch.Tensor, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self.condition(encoded)
        return self.net(sketch, cond), cond


@dataclass
class Parts:
    generator: ConditionalGenerator
    discriminator: nn.Module | None  # None when no objective term reads one (`Objective.needs_discriminator`)
    loss: Any
    objective: Objective


def image_channels(recipe: Recipe) -> int:
    """RGB, plus alpha when the recipe keeps transparency."""
    return images.image_channels(recipe.data.keep_alpha)


def build_generator(recipe: Recipe, schema: ConditionSchema) -> ConditionalGenerator:
    from colorgan.registry import CONDITIONS, GENERATORS

    condition = CONDITIONS.build(recipe.condition, "condition", schema=schema)
    net = GENERATORS.build(
        recipe.generator, "generator",
        in_channels=recipe.data.sketch_channels, out_channels=image_channels(recipe), cond_dim=condition.dim,
    )
    return ConditionalGenerator(condition, net)


def build_parts(recipe: Recipe, schema: ConditionSchema) -> Parts:
    from colorgan.registry import DISCRIMINATORS, LOSSES

    generator = build_generator(recipe, schema)
    objective = Objective.build(recipe.objective)
    discriminator = DISCRIMINATORS.build(
        recipe.discriminator, "discriminator",
        image_channels=image_channels(recipe), sketch_channels=recipe.data.sketch_channels,
        cond_dim=generator.condition.dim,
    ) if objective.needs_discriminator else None  # nothing would read it: not built, trained or saved
    return Parts(generator, discriminator, LOSSES.build(recipe.loss, "loss"), objective)


class BatchNormAtBatchOneWarning(UserWarning):
    """A recipe trains BatchNorm on one image at a time."""


def warn_batchnorm_at_batch_one(parts: Parts, batch_size: int) -> str | None:
    """Warn (and return the one-line message) when BatchNorm would train at batch 1.

    BatchNorm over one image is instance normalisation: training learns per-image statistics,
    but eval mode normalises with running statistics averaged over many images, which fit none
    of them (the seed recipe scored 6.6 dB that way, 28.2 dB with per-image statistics).
    `batch_size` is how many images one BatchNorm layer sees: `train.batch_size` (times the
    process count under `train.sync_batchnorm`).
    """
    if batch_size != 1:
        return None
    named = {"generator": parts.generator, "discriminator": parts.discriminator}
    culprits = [name for name, module in named.items()
                if module is not None and any(isinstance(m, _BatchNorm) for m in module.modules())]
    if not culprits:
        return None
    message = (f"BatchNorm trained at batch 1 (in the {' and '.join(culprits)}): held-out images will be normalised "
               "with running statistics that batch-1 training gets wrong; use "
               "-o generator.norm=instance -o discriminator.norm=instance (or a larger train.batch_size)")
    warnings.warn(message, BatchNormAtBatchOneWarning, stacklevel=2)
    return message


FILL_CHECK_ROWS = 256
"""Training pairs, spread evenly over the set, that `resolve_fill` fills: a property of the art,
which a few hundred pairs tell."""


class FillUnsuitedWarning(UserWarning):
    """`generator.fill: regions` on art that is not flat colour inside closed outlines."""


def resolve_fill(recipe: Recipe, parts: Parts, batches: DeviceBatches) -> tuple[Recipe, str | None]:
    """Decide `generator.fill: auto` from the training set, and warn when an explicit `regions`
    does not suit it. Returns the recipe to save (with `auto` replaced by what it chose, as the run
    folder and model file keep it) and a line saying what `auto` chose, or None.

    The test is `fill_fidelity_db` of FILL_CHECK_ROWS training pairs (the rows `batches` already
    holds): art that is one colour inside each closed outline of its sketch suits the fill
    (Twemoji 37.6 dB, Fluent 38.4); where outlines leave hair against face or a body against the
    background open (OpenMoji's line art, 16.4 dB), a region's median repaints one with the other's
    colour (real-icons there: 16.8 dB and skin accuracy 0.50 filled, 26.5 dB and 0.88 not). An
    explicit `regions` is kept, since the recipe asked for it, with a `FillUnsuitedWarning`.
    """
    fill = getattr(parts.generator.net, "fill", "none")
    if fill not in ("regions", "auto"):
        return recipe, None
    rows = len(batches)
    picked = torch.arange(rows)[::max(1, rows // FILL_CHECK_ROWS)][:FILL_CHECK_ROWS]
    pairs = batches.batch(picked, augmented=False)
    fidelity = fill_fidelity_db(pairs["sketch"], pairs["target"])
    suited = fidelity >= SUITED_FILL_DB
    if fill == "regions":
        if not suited:
            warnings.warn(f"generator.fill=regions: the training targets are {fidelity:.1f} dB from their own region "
                          f"fill (suited art: >= {SUITED_FILL_DB:g} dB): the sketches' outlines do not close every "
                          "colour area, so the fill would paint across them; use -o generator.fill=none or auto",
                          FillUnsuitedWarning, stacklevel=2)
        return recipe, None
    chosen = "regions" if suited else "none"
    parts.generator.net.fill = chosen
    why = (f">= {SUITED_FILL_DB:g}: the sketches' outlines close their colour areas" if suited
           else f"< {SUITED_FILL_DB:g}: the sketches' outlines leave colour areas open")
    return (dataclasses.replace(recipe, generator={**recipe.generator, "fill": chosen}),
            f"generator.fill {chosen} (auto: the training targets are {fidelity:.1f} dB from their own region fill, {why})")
