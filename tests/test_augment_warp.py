"""`data.augment.warp`: a smooth random bend of half the training pairs, the same for sketch,
target and condition regions (that a warped run resumes exactly: tests/test_device_batches.py)."""

import copy

import pytest
import torch
from click.testing import CliRunner

from colorgan.cli import cli
from colorgan.data.augment import augment, warp_grid
from colorgan.data.device_batches import DeviceBatches
from colorgan.recipe import Augment
from conftest import TINY
from test_device_batches import tiny_data


def test_warp_bends_half_the_pairs_and_every_image_of_a_pair_alike():
    data, encode = tiny_data()
    rows = torch.arange(len(data.train))
    plain = DeviceBatches(data.train, encode, torch.device("cpu"), regions=True).batch(rows)
    torch.manual_seed(0)
    bent = DeviceBatches(data.train, encode, torch.device("cpu"), Augment(warp=2.0), regions=True).batch(rows)
    changed = [not torch.equal(bent["target"][i], plain["target"][i]) for i in range(len(rows))]
    assert 0.3 < sum(changed) / len(rows) < 0.7
    torch.manual_seed(0)
    grid = warp_grid(plain["sketch"], 2.0)
    for i, c in enumerate(changed):
        for key in ("sketch", "target", "region"):
            expect = (torch.nn.functional.grid_sample(plain[key][i:i + 1], grid[i:i + 1], align_corners=True,
                                                      padding_mode="border")[0] if c else plain[key][i])
            assert torch.allclose(bent[key][i], expect, atol=1e-6), (i, key)
        assert -1 - 1e-6 <= bent["sketch"][i].min() and bent["sketch"][i].max() <= 1 + 1e-6  # a blend, never beyond
    assert torch.equal(bent["cond"], plain["cond"])


def test_the_warp_is_smooth_and_as_large_as_asked():
    like = torch.zeros(64, 1, 64, 64)
    torch.manual_seed(0)
    grid = warp_grid(like, 2.0)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    shift = (grid - torch.stack([xs, ys], dim=-1)) * 63 / 2  # in pixels
    assert 1.5 < float(shift.std()) < 2.5
    assert float((shift[:, 1:] - shift[:, :-1]).abs().max()) < 1.5  # neighbours move together: no tearing
    assert torch.equal(warp_grid(like[:2], 0.0), torch.stack([xs, ys], dim=-1).expand(2, -1, -1, -1))  # 0: no bend


def test_zero_warp_changes_nothing_and_draws_nothing():
    x = torch.rand(4, 1, 16, 16)
    state = torch.get_rng_state()
    out = augment({"sketch": x}, Augment(warp=0.0))
    assert torch.equal(out["sketch"], x) and torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("value", ["-1", "17", ".nan", "wide"])
def test_a_warp_out_of_range_is_one_line_naming_the_key(tmp_path, write_recipe, value):
    path = write_recipe(copy.deepcopy(TINY))
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(tmp_path / "run"),
                                      "-o", f"data.augment.warp={value}"])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert "data.augment.warp" in line and ("16" in line or "number" in line), line
    assert not (tmp_path / "run").exists()
