"""The generator's objective: the recipe's weighted list of terms (`OBJECTIVES`), summed.

    objective:
      - {type: gan, weight: 1.0}
      - {type: l1, weight: 100.0}     # the seed's GAN + 100 * L1

Each term's unweighted value is logged under its `log_key` (`g_gan`, `l1`, ...), so a curve shows
what each part of the objective is doing whatever the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from colorgan.errors import RecipeError

DEFAULT = ({"type": "gan", "weight": 1.0}, {"type": "l1", "weight": 100.0})


def split_term(term: Mapping[str, Any], where: str) -> tuple[dict[str, Any], float]:
    """A recipe term -> (the component dict without `weight`, the weight), checked."""
    if not isinstance(term, Mapping):
        raise RecipeError(f"{where}: expected a mapping like {{type: l1, weight: 100}}, got {term!r}")
    weight = term.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise RecipeError(f"{where}.weight: expected a finite number >= 0, got {weight!r}")
    return {k: v for k, v in term.items() if k != "weight"}, float(weight)


def _reads_discriminator(term_class: type) -> bool:
    """Only a term class that says `needs_discriminator = False` (the pixel terms) is known not to
    read the discriminator (`d_fake` or `features`); one that says nothing is taken to read it."""
    return getattr(term_class, "needs_discriminator", True)


def reads_discriminator(terms: Sequence[Mapping[str, Any]]) -> bool:
    """`Objective.needs_discriminator` of a recipe's terms without building them (the size check
    reads it before anything is built); a type not registered here counts as reading one."""
    from colorgan.registry import OBJECTIVES

    types = [term.get("type") if isinstance(term, Mapping) else None for term in terms]
    return any(not isinstance(t, str) or t not in OBJECTIVES or _reads_discriminator(OBJECTIVES.get(t))
               for t in types)


def check(terms: Sequence[Mapping[str, Any]]) -> None:
    """Every term names a registered objective with options it takes; no term twice; not empty."""
    from colorgan.registry import OBJECTIVES

    if not terms:
        raise RecipeError("objective: expected at least one term, e.g. [{type: gan, weight: 1}, {type: l1, weight: 100}]")
    seen = set()
    for i, term in enumerate(terms):
        cfg, _ = split_term(term, f"objective[{i}]")
        OBJECTIVES.check(cfg, f"objective[{i}]")
        if cfg["type"] in seen:
            raise RecipeError(f"objective[{i}]: term {cfg['type']!r} is listed twice; give it one weight")
        seen.add(cfg["type"])


@dataclass
class Objective:
    terms: list[tuple[Any, float]]  # (term, weight)

    @classmethod
    def build(cls, terms: Sequence[Mapping[str, Any]]) -> "Objective":
        from colorgan.registry import OBJECTIVES

        check(terms)
        built = []
        for i, term in enumerate(terms):
            cfg, weight = split_term(term, f"objective[{i}]")
            built.append((OBJECTIVES.build(cfg, f"objective[{i}]"), weight))
        return cls(built)

    @property
    def needs_region(self) -> bool:
        """Whether a term weighs the condition regions (its class says `needs_region = True`), so
        training batches must carry them; computing them is skipped otherwise."""
        return any(getattr(term, "needs_region", False) for term, _ in self.terms)

    @property
    def needs_discriminator(self) -> bool:
        """Whether a term reads the discriminator (`_reads_discriminator`); without one, no
        discriminator is built (`build_parts`): it would neither run nor train."""
        return any(_reads_discriminator(type(term)) for term, _ in self.terms)

    @property
    def log_keys(self) -> tuple[str, ...]:
        return tuple(getattr(term, "log_key", type(term).__name__) for term, _ in self.terms)

    def __call__(self, inputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(weighted sum, each term's unweighted value in `log_keys` order)."""
        values = [term(inputs) for term, _ in self.terms]
        total = sum(weight * value for (_, weight), value in zip(self.terms, values))
        return total, values
