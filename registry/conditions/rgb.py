"""`rgb`: the condition value is a colour, encoded as CIELAB, so unseen colours can be asked for."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping, Sequence

import torch

from colorgan.colour import css_lab
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ConditionError
from colorgan.registry import CONDITIONS
from colorgan.registry.conditions.base import ConditionEncoder


@lru_cache(maxsize=4096)
def colour_vector(value: str) -> tuple[float, float, float] | None:
    """(L/100, a/128, b/128) of a CSS colour name or #rrggbb, or None if it is not a colour."""
    lab = css_lab(value)
    if lab is None:
        return None
    L, a, b = lab.tolist()
    return (L / 100.0, a / 128.0, b / 128.0)


@CONDITIONS.register("rgb")
class RGBCondition(ConditionEncoder):
    """Each value is a colour (CSS name or #rrggbb), encoded as normalised CIELAB; unseen colours work.

    Every schema value must be a colour (construction fails otherwise); at sampling time any colour
    may be asked for, seen in training or not. Per attribute the vector is (L/100, a/128, b/128).

    Options:
      dropout (float, default 0.0): probability, in training, of replacing each attribute of each
        sample by "unspecified". When > 0 each attribute gets a fourth "given" flag channel
        (1 = colour given) and "unspecified" is the all-zero block (flag 0, so not black);
        dim = 4 per attribute instead of 3. Attributes may then be left out at sampling time.

    `encode` gives a (B, n_attributes, 4) FloatTensor: L, a, b and the given flag.
    """

    def __init__(self, schema: ConditionSchema, dropout: float = 0.0) -> None:
        super().__init__(schema, dropout)
        for attribute, values in schema.attributes:
            for value in values:
                if colour_vector(value) is None:
                    raise ValueError(
                        f"condition attribute {attribute!r}: value {value!r} is not a colour "
                        "(CSS colour name or #rrggbb); the rgb condition needs colour values"
                    )
        self.channels = 4 if self.supports_unspecified else 3
        self.dim = self.channels * len(self.attributes)

    def encode(self, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        rows = self._values(conditions)
        out = torch.zeros((len(rows), len(self.attributes), 4), dtype=torch.float32)
        for i, row in enumerate(rows):
            for j, (attribute, value) in enumerate(zip(self.attributes, row)):
                if value is None:
                    continue
                vector = colour_vector(value)
                if vector is None:
                    raise ConditionError(
                        f"{attribute}={value!r} is not a colour (use a CSS colour name or #rrggbb)"
                    )
                out[i, j, :3] = torch.tensor(vector)
                out[i, j, 3] = 1.0
        return out

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        encoded = encoded.float()
        mask = self._drop_mask(tuple(encoded.shape[:2]), encoded.device)
        if mask is not None:
            encoded = encoded.masked_fill(mask.unsqueeze(-1), 0.0)
        return encoded[..., : self.channels].reshape(encoded.shape[0], self.dim)
