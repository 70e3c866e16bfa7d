"""`onehot`: the seed's condition encoding, one one-hot block per attribute."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from colorgan.data.schema import ConditionSchema
from colorgan.registry import CONDITIONS
from colorgan.registry.conditions.base import ConditionEncoder

UNSPECIFIED = -1  # the value index `encode` writes for an attribute left out


def encode_indices(encoder: ConditionEncoder, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
    """(B, n_attributes) LongTensor of value indices in the schema, UNSPECIFIED where left out."""
    rows = encoder._values(conditions)
    schema = encoder.schema
    out = [
        [UNSPECIFIED if v is None else schema.index(a, v) for a, v in zip(encoder.attributes, row)]
        for row in rows
    ]
    return torch.tensor(out, dtype=torch.long).reshape(len(rows), len(encoder.attributes))


def drop_indices(encoder: ConditionEncoder, indices: torch.Tensor) -> torch.Tensor:
    """In training with dropout, replace each entry by UNSPECIFIED with probability `dropout`."""
    mask = encoder._drop_mask(tuple(indices.shape), indices.device)
    return indices if mask is None else indices.masked_fill(mask, UNSPECIFIED)


@CONDITIONS.register("onehot")
class OneHotCondition(ConditionEncoder):
    """One-hot vector per attribute, concatenated (the seed's encoding; dim = number of values).

    Options:
      dropout (float, default 0.0): probability, in training, of replacing each attribute of each
        sample by "unspecified". When > 0 an attribute may also be left out at sampling time.
        "Unspecified" is an all-zero block for that attribute (dim does not change).

    `encode` gives a (B, n_attributes) LongTensor of value indices (-1 = unspecified).
    """

    def __init__(self, schema: ConditionSchema, dropout: float = 0.0) -> None:
        super().__init__(schema, dropout)
        self.sizes = [len(values) for _, values in schema.attributes]
        self.dim = sum(self.sizes)

    def encode(self, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        return encode_indices(self, conditions)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        indices = drop_indices(self, encoded.long())
        blocks = []
        for i, size in enumerate(self.sizes):
            idx = indices[:, i]
            given = (idx >= 0).unsqueeze(1)
            blocks.append(F.one_hot(idx.clamp(min=0), size) * given)
        if not blocks:
            return indices.new_zeros((indices.shape[0], 0), dtype=torch.float32)
        return torch.cat(blocks, dim=1).float()
