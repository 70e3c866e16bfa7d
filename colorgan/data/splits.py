"""Train/test splits that test what a colouring model is for.

A character is the set of rows sharing one `input` sketch. `combinations` asks "can the model
colour a known character in a hair x shirt pairing it never saw for that character?", so each
held-out combination's values must each still be seen with that character in training;
`characters` asks "can it colour a sketch it never saw?". Both are random but fixed by the seed,
and each character's draw depends only on the seed and its own sketch, so adding a character does
not reshuffle the others.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd

from colorgan.data.metadata import SPLIT_COLUMN
from colorgan.data.schema import ConditionSchema
from colorgan.errors import DataError

if TYPE_CHECKING:  # the recipe module pulls in the registry; splits only read three fields
    from colorgan.recipe import Holdout


def split_frame(
    frame: pd.DataFrame, schema: ConditionSchema, holdout: Holdout, seed: int
) -> tuple[list[int], list[int]]:
    """Train and test row positions (sorted) for `holdout`, deterministic for `seed`."""
    kind = holdout.kind
    if kind == "auto":
        kind = "column" if SPLIT_COLUMN in frame.columns else "combinations"
    if kind == "column":
        train = [i for i, s in enumerate(frame[SPLIT_COLUMN]) if s == "train"]
        test = [i for i, s in enumerate(frame[SPLIT_COLUMN]) if s != "train"]
        if not train:
            raise DataError("data: the split column marks no row as train; mark some rows train")
        return train, test
    if kind == "none":
        return list(range(len(frame))), []
    if kind == "characters":
        return _by_character(frame, holdout.count, seed)
    if kind == "combinations":
        return _by_combination(frame, schema, holdout.fraction, seed)
    raise DataError(f"data.holdout.kind: unknown {kind!r}; valid: auto, combinations, characters, none")


def _characters(frame: pd.DataFrame) -> dict[str, list[int]]:
    """Row positions of each sketch, sketches in sorted order (independent of row order)."""
    groups: dict[str, list[int]] = {}
    for pos, sketch in enumerate(frame["input"]):
        groups.setdefault(sketch, []).append(pos)
    return dict(sorted(groups.items()))


def _by_character(frame: pd.DataFrame, count: int, seed: int) -> tuple[list[int], list[int]]:
    groups = _characters(frame)
    if not 1 <= count < len(groups):
        raise DataError(
            f"data.holdout.count: {count} characters cannot be held out of {len(groups)}; "
            f"use a count from 1 to {len(groups) - 1}" if len(groups) > 1 else
            "data.holdout: the dataset has a single character (sketch), so none can be held out; "
            "use holdout: combinations or none"
        )
    held = set(random.Random(seed).sample(sorted(groups), count))
    train = sorted(p for s, rows in groups.items() if s not in held for p in rows)
    test = sorted(p for s, rows in groups.items() if s in held for p in rows)
    return train, test


def _by_combination(
    frame: pd.DataFrame, schema: ConditionSchema, fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    if not 0 < fraction < 1:
        raise DataError(
            f"data.holdout.fraction: expected a number between 0 and 1, got {fraction}; "
            "use holdout: none for no test set"
        )
    attributes = schema.names
    combos = list(frame[attributes].itertuples(index=False, name=None))
    test: list[int] = []
    for sketch, rows in _characters(frame).items():
        rng = random.Random(f"{seed}/{sketch}")  # str seeds hash stably across runs
        held = _held_combinations(sorted({combos[p] for p in rows}), fraction, rng)
        test.extend(p for p in rows if combos[p] in held)
    if not test:
        raise DataError(
            "data.holdout: no attribute combination can be held out while every value stays seen "
            "with its character in training (each character needs at least two values of every "
            "attribute and enough combinations); use holdout: characters or none"
        )
    held_rows = set(test)
    return [p for p in range(len(frame)) if p not in held_rows], sorted(test)


def _held_combinations(
    combos: list[tuple[str, ...]], fraction: float, rng: random.Random
) -> set[tuple[str, ...]]:
    """About `fraction` of `combos` (at least one when possible), keeping every value covered."""
    want = max(1, round(fraction * len(combos)))
    seen = [Counter(combo[a] for combo in combos) for a in range(len(combos[0]))]
    order = combos[:]
    rng.shuffle(order)
    held: set[tuple[str, ...]] = set()
    for combo in order:
        if len(held) == want:
            break
        if all(seen[a][value] > 1 for a, value in enumerate(combo)):
            held.add(combo)
            for a, value in enumerate(combo):
                seen[a][value] -= 1
    return held
