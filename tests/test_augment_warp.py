"""`data.augment.warp` and `rotate`: a smooth random bend and a turn of half the training pairs,
the same for sketch, target and condition regions (that such a run resumes exactly:
tests/test_device_batches.py)."""

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


def test_rotate_turns_each_row_about_the_centre_by_at_most_the_asked_angle():
    like = torch.zeros(32, 1, 64, 64)
    torch.manual_seed(0)
    grid = warp_grid(like, 0.0, 10.0)  # no bend: a pure turn per row
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    base = torch.stack([xs, ys], dim=-1).reshape(-1, 2)
    angles = []
    for row in grid.reshape(32, -1, 2):
        matrix = torch.linalg.lstsq(base, row).solution  # row = base @ matrix: linear, no shift
        assert torch.allclose(base @ matrix, row, atol=1e-5)
        assert torch.allclose(matrix.T @ matrix, torch.eye(2), atol=1e-5) and float(torch.det(matrix)) > 0
        angles.append(float(torch.rad2deg(torch.atan2(matrix[0, 1], matrix[0, 0]))))
    assert max(abs(a) for a in angles) <= 10 + 1e-4 and max(angles) - min(angles) > 10  # spread over ±10°


def test_zero_warp_and_turn_change_nothing_and_draw_nothing():
    x = torch.rand(4, 1, 16, 16)
    state = torch.get_rng_state()
    out = augment({"sketch": x}, Augment(warp=0.0, rotate=0.0))
    assert torch.equal(out["sketch"], x) and torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("key, value, bound", [("warp", "-1", "16"), ("warp", "17", "16"), ("warp", ".nan", "16"),
                                               ("warp", "wide", "number"), ("rotate", "46", "45"),
                                               ("rotate", "-5", "45")])
def test_a_warp_or_turn_out_of_range_is_one_line_naming_the_key(tmp_path, write_recipe, key, value, bound):
    path = write_recipe(copy.deepcopy(TINY))
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(tmp_path / "run"),
                                      "-o", f"data.augment.{key}={value}"])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert f"data.augment.{key}" in line and (bound in line or "number" in line), line
    assert not (tmp_path / "run").exists()
