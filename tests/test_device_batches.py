"""Training batches gathered on the device: the same images and conditions the dataset holds, in
the loader's row order, the condition regions, and `data.augment.hflip` mirroring sketch, target
and region together (and `warp` bending them), exactly again on resume."""

import copy

import pytest
import torch

from colorgan import recipe as recipes
from colorgan.build import build_parts
from colorgan.data import load_dataset
from colorgan.data.device_batches import DeviceBatches, condition_regions
from colorgan.recipe import Augment
from colorgan.train import train
from conftest import TINY


def tiny_data():
    recipe = recipes.from_dict(copy.deepcopy(TINY))
    data = load_dataset(recipe.data, recipe.seed)
    return data, build_parts(recipe, data.schema).generator.encode


def test_a_batch_is_the_dataset_rows():
    data, encode = tiny_data()
    rows = torch.tensor([5, 0, 17, 5])
    batch = DeviceBatches(data.train, encode, torch.device("cpu")).batch(rows)
    items = [data.train[i] for i in rows.tolist()]
    assert torch.equal(batch["sketch"], torch.stack([it["sketch"] for it in items]))
    assert torch.equal(batch["target"], torch.stack([it["target"] for it in items]))
    assert torch.equal(batch["cond"], encode([it["conditions"] for it in items]))


def test_hflip_mirrors_sketch_and_target_together():
    data, encode = tiny_data()
    rows = torch.arange(len(data.train))
    plain = DeviceBatches(data.train, encode, torch.device("cpu")).batch(rows)
    torch.manual_seed(0)
    flipped = DeviceBatches(data.train, encode, torch.device("cpu"), Augment(hflip=True)).batch(rows)
    mirrored = [not torch.equal(flipped["sketch"][i], plain["sketch"][i]) for i in range(len(rows))]
    assert 0.3 < sum(mirrored) / len(rows) < 0.7
    for i, m in enumerate(mirrored):
        expect = plain["target"][i].flip(-1) if m else plain["target"][i]
        assert torch.equal(flipped["target"][i], expect)
    assert torch.equal(flipped["cond"], plain["cond"])


@pytest.mark.parametrize("changes", [{"hflip": True}, {"hflip": True, "warp": 2.0, "rotate": 10.0}])
def test_augmented_runs_resume_exactly(tmp_path, changes):
    tiny = copy.deepcopy(TINY)
    tiny["data"]["augment"] = changes
    tiny["train"].update(max_steps=5, checkpoint_every=100)
    recipe = recipes.from_dict(tiny)
    whole = train(recipe, out=tmp_path / "whole")
    train(recipe, out=tmp_path / "paused", stop_at=2)
    resumed = train(recipe, out=tmp_path / "paused", resume="latest")
    from safetensors.torch import load_file

    a, b = load_file(str(whole.model)), load_file(str(resumed.model))
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = train(recipes.from_dict(copy.deepcopy(TINY), ["train.max_steps=5"]), out=tmp_path / "plain")
    c = load_file(str(plain.model))
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the changes changed training


def test_condition_regions_are_where_a_characters_variants_differ():
    data, encode = tiny_data()
    rows = data.train.stacked()
    regions = condition_regions(rows)
    assert regions.shape == (len(rows.sketches), 1, *rows.targets.shape[-2:])
    for s in range(len(rows.sketches)):
        targets = rows.targets[rows.target_of_row[rows.sketch_of_row == s]].int()
        changes = ((targets.amax(0) - targets.amin(0)) > 8).any(0)
        assert torch.equal(regions[s, 0].bool(), changes)
        assert 0 < changes.float().mean() < 0.6  # hair and shirt: part of the picture, not all of it
    torch.manual_seed(0)
    batch = DeviceBatches(data.train, encode, torch.device("cpu"), Augment(hflip=True), regions=True).batch(torch.arange(8))
    torch.manual_seed(0)
    without = DeviceBatches(data.train, encode, torch.device("cpu"), Augment(hflip=True)).batch(torch.arange(8))
    assert "region" not in without  # not computed unless an objective term needs them
    assert torch.equal(without["target"], batch["target"]) and torch.equal(without["sketch"], batch["sketch"])
    plain = DeviceBatches(data.train, encode, torch.device("cpu"), regions=True).batch(torch.arange(8))
    for i in range(8):  # a mirrored pair brings its region mirrored
        mirrored = not torch.equal(batch["target"][i], plain["target"][i])
        assert torch.equal(batch["region"][i], plain["region"][i].flip(-1) if mirrored else plain["region"][i])
