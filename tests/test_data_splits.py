"""Splits: held-out combinations stay unseen per character while every value stays seen."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from colorgan.data.schema import ConditionSchema
from colorgan.data.splits import split_frame
from colorgan.errors import DataError
from colorgan.recipe import Holdout

HAIR = ["crimson", "gold", "blue", "darkgreen", "deepskyblue"]
SHIRT = ["olive", "violet", "orangered", "darkturquoise", "darkslateblue"]


def grid(characters: int = 4, hair=HAIR, shirt=SHIRT, split=None) -> tuple[pd.DataFrame, ConditionSchema]:
    rows = [
        {"input": f"s{c}.png", "output": f"c{c}-{h}-{s}.png", "hair": h, "shirt": s}
        for c in range(characters) for h, s in itertools.product(hair, shirt)
    ]
    frame = pd.DataFrame(rows)
    if split is not None:
        frame["split"] = [split(i) for i in range(len(frame))]
    return frame, ConditionSchema.from_mapping({"hair": hair, "shirt": shirt})


def keys(frame, rows):
    return {(frame["input"][i], frame["hair"][i], frame["shirt"][i]) for i in rows}


def test_combinations_hold_out_unseen_pairs_and_keep_every_value_per_character():
    frame, schema = grid()
    train, test = split_frame(frame, schema, Holdout("combinations", fraction=0.2), seed=0)
    assert sorted(train + test) == list(range(len(frame))) and not set(train) & set(test)
    assert not keys(frame, train) & keys(frame, test)
    for sketch, rows in frame.groupby("input").groups.items():
        held = [i for i in rows if i in set(test)]
        assert len(held) == 5  # 20% of 25 combinations
        seen = frame.loc[[i for i in rows if i not in set(test)]]
        assert set(seen["hair"]) == set(HAIR) and set(seen["shirt"]) == set(SHIRT)


def test_combinations_are_deterministic_per_seed_and_differ_across_seeds():
    frame, schema = grid()
    holdout = Holdout("combinations", fraction=0.3)
    first = split_frame(frame, schema, holdout, seed=1)
    assert split_frame(frame, schema, holdout, seed=1) == first
    assert split_frame(frame, schema, holdout, seed=2) != first
    shuffled = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    assert keys(shuffled, split_frame(shuffled, schema, holdout, seed=1)[1]) == keys(frame, first[1])


def test_combinations_too_small_says_what_would_work():
    frame, schema = grid(hair=["red"], shirt=["blue", "green"])
    with pytest.raises(DataError, match="holdout: characters or none"):
        split_frame(frame, schema, Holdout("combinations"), seed=0)
    with pytest.raises(DataError, match="between 0 and 1"):
        split_frame(*grid(), Holdout("combinations", fraction=1.0), seed=0)


def test_characters_hold_out_whole_sketches():
    frame, schema = grid(characters=5)
    train, test = split_frame(frame, schema, Holdout("characters", count=2), seed=0)
    held = set(frame["input"][test])
    assert len(held) == 2 and not held & set(frame["input"][train])
    assert len(test) == 50 and len(train) == 75
    held_per_seed = {
        frozenset(frame["input"][split_frame(frame, schema, Holdout("characters", count=2), seed=s)[1]])
        for s in range(6)
    }
    assert len(held_per_seed) > 1


@pytest.mark.parametrize("count", [0, 5, 9])
def test_characters_count_must_leave_some_for_training(count):
    frame, schema = grid(characters=5)
    with pytest.raises(DataError, match="from 1 to 4"):
        split_frame(frame, schema, Holdout("characters", count=count), seed=0)


def test_none_and_the_split_column():
    frame, schema = grid(characters=2, split=lambda i: "test" if i % 10 == 0 else "train")
    assert split_frame(frame, schema, Holdout("none"), seed=0) == (list(range(50)), [])
    train, test = split_frame(frame, schema, Holdout("auto"), seed=0)
    assert test == [0, 10, 20, 30, 40] and len(train) == 45
    overridden = split_frame(frame, schema, Holdout("combinations"), seed=0)
    assert overridden[1] != test and len(overridden[1]) == 10
    auto_without_column = split_frame(*grid(characters=2), Holdout("auto"), seed=0)
    assert auto_without_column == split_frame(*grid(characters=2), Holdout("combinations"), seed=0)


def test_split_column_without_train_rows_is_an_error():
    frame, schema = grid(characters=1, split=lambda i: "test")
    with pytest.raises(DataError, match="no row as train"):
        split_frame(frame, schema, Holdout(), seed=0)
