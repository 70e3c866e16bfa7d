"""Training batches gathered on the device: the same images and conditions the dataset holds, in
the loader's row order, and `data.augment` (mirror, move, rescale, line weight) changing sketch and
target together, exactly again on resume."""

import copy

import torch

from colorgan import recipe as recipes
from colorgan.build import build_parts
from colorgan.data import load_dataset
from colorgan.data.augment import augment
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


def test_moves_and_rescales_sketch_and_target_together():
    torch.manual_seed(0)
    sketch = torch.rand(6, 1, 32, 32) * 2 - 1
    target = torch.cat([sketch, -sketch, sketch.square()], dim=1)  # each channel a function of the sketch
    torch.manual_seed(1)
    moved, moved_target = augment(sketch, target, Augment(scale=0.2, shift=0.1))
    assert not torch.allclose(moved, sketch)
    # the same warp: the target's first channel is the warped sketch, pixel for pixel
    assert torch.allclose(moved_target[:, :1], moved, atol=1e-6)
    assert torch.allclose(moved_target[:, 1:2], -moved, atol=1e-6)
    torch.manual_seed(1)
    again, _ = augment(sketch, target, Augment(scale=0.2, shift=0.1))
    assert torch.equal(again, moved)  # from the RNG: seeded, repeatable


def test_line_weight_thickens_dark_lines_of_the_sketch_only():
    sketch = torch.ones(64, 1, 16, 16)
    sketch[:, :, 8, 4:12] = -1.0  # a one-pixel dark line on white
    target = torch.rand(64, 3, 16, 16)
    torch.manual_seed(0)
    thick, same_target = augment(sketch, target, Augment(line_weight=2))
    assert torch.equal(same_target, target)
    assert (thick <= sketch).all()  # lines only grow, never fade
    widths = (thick[:, 0, :, 8] < 0).sum(dim=1)  # rows the line covers in column 8
    assert set(widths.tolist()) == {1, 3, 5}  # 0, 1 or 2 pixels each side, all drawn


def test_augmented_runs_resume_exactly(tmp_path):
    tiny = copy.deepcopy(TINY)
    tiny["data"]["augment"] = {"hflip": True, "scale": 0.1, "shift": 0.05, "line_weight": 1}
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
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the flips changed training


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
    batch = DeviceBatches(data.train, encode, torch.device("cpu"), Augment(hflip=True)).batch(torch.arange(8))
    plain = DeviceBatches(data.train, encode, torch.device("cpu")).batch(torch.arange(8))
    for i in range(8):  # a mirrored pair brings its region mirrored
        mirrored = not torch.equal(batch["target"][i], plain["target"][i])
        assert torch.equal(batch["region"][i], plain["region"][i].flip(-1) if mirrored else plain["region"][i])
