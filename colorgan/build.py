"""Recipe + condition schema -> the modules of a run, all through the registries.

The condition encoder travels with the generator (`ConditionalGenerator`): it is trained by the
generator's loss, exported in the same model file, and one `forward` call lets DDP see both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Mapping

import torch
from torch import nn

from colorgan.data.schema import ConditionSchema
from colorgan.recipe import Recipe


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
    discriminator: nn.Module
    loss: Any


def image_channels(recipe: Recipe) -> int:
    """RGB, plus alpha when the recipe keeps transparency."""
    return 4 if recipe.data.keep_alpha else 3


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
    discriminator = DISCRIMINATORS.build(
        recipe.discriminator, "discriminator",
        image_channels=image_channels(recipe), sketch_channels=recipe.data.sketch_channels,
        cond_dim=generator.condition.dim,
    )
    return Parts(generator, discriminator, LOSSES.build(recipe.loss, "loss"))
