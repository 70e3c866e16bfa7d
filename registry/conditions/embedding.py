"""`embedding`: a learned vector per attribute value."""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from colorgan.data.schema import ConditionSchema
from colorgan.registry import CONDITIONS
from colorgan.registry.conditions.base import ConditionEncoder
from colorgan.registry.conditions.onehot import drop_indices, encode_indices

COMBINES = ("concat", "sum")


def _check_width(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return int(value)


@CONDITIONS.register("embedding")
class EmbeddingCondition(ConditionEncoder):
    """Learned embedding per attribute (nn.Embedding), concatenated or summed.

    Options:
      dim (int or {attribute: int}, default 16): embedding width, for every attribute or per
        attribute (attributes not named get 16).
      combine (concat | sum, default concat): concat gives dim = sum of widths; sum needs every
        width equal and gives dim = that width.
      dropout (float, default 0.0): probability, in training, of replacing each attribute of each
        sample by "unspecified". When > 0 each attribute gets one extra, learned "unspecified"
        embedding (index = number of values), also used for attributes left out at sampling time.

    `encode` gives a (B, n_attributes) LongTensor of value indices (-1 = unspecified).
    """

    def __init__(
        self,
        schema: ConditionSchema,
        dim: int | Mapping[str, int] = 16,
        combine: str = "concat",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(schema, dropout)
        if combine not in COMBINES:
            raise ValueError(f"combine: expected one of {', '.join(COMBINES)}, got {combine!r}")
        if isinstance(dim, Mapping):
            unknown = [a for a in dim if a not in self.attributes]
            if unknown:
                raise ValueError(
                    f"dim: unknown attribute {unknown[0]!r}; attributes: {', '.join(self.attributes)}"
                )
            widths = [_check_width(dim.get(a, 16), f"dim.{a}") for a in self.attributes]
        else:
            widths = [_check_width(dim, "dim")] * len(self.attributes)
        if combine == "sum" and len(set(widths)) > 1:
            raise ValueError(f"dim: combine=sum needs one width for every attribute, got {widths}")
        self.combine = combine
        self.widths = widths
        extra = 1 if self.supports_unspecified else 0
        # A list, not a dict: attribute names need not be valid module names.
        self.embeddings = nn.ModuleList(
            nn.Embedding(len(values) + extra, w) for (_, values), w in zip(schema.attributes, widths)
        )
        self.sizes = [len(values) for _, values in schema.attributes]
        if not widths:
            self.dim = 0
        else:
            self.dim = sum(widths) if combine == "concat" else widths[0]

    def encode(self, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        return encode_indices(self, conditions)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        indices = drop_indices(self, encoded.long())
        vectors = []
        for i, (embedding, size) in enumerate(zip(self.embeddings, self.sizes)):
            idx = indices[:, i]
            # -1 (unspecified) -> the extra last row; only reachable when dropout > 0.
            vectors.append(embedding(torch.where(idx < 0, torch.full_like(idx, size), idx)))
        if not vectors:
            return torch.zeros((indices.shape[0], 0), device=indices.device)
        if self.combine == "concat":
            return torch.cat(vectors, dim=1)
        return torch.stack(vectors, dim=0).sum(dim=0)
