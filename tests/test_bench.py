"""`colorgan bench` through the CLI on a tiny recipe: every field present and sane (no speed asserted)."""

import json
import math

from click.testing import CliRunner

from colorgan.bench import SPEED_FIELDS
from colorgan.cli import cli


def test_bench_speed_json_has_every_field(tiny_recipe, write_recipe):
    result = CliRunner().invoke(cli, ["bench", "speed", "--recipe", str(write_recipe(tiny_recipe)),
                                      "--steps", "6", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert tuple(data) == SPEED_FIELDS
    for key in SPEED_FIELDS[:-2]:
        assert isinstance(data[key], float) and math.isfinite(data[key]) and data[key] > 0, key
    assert data["flops_per_image"] > 1e5  # a U-Net step is at least this much work
    assert data["torch"].split(".")[0].isdigit() and data["threads"] >= 1


def test_bench_speed_table_and_overrides(tiny_recipe, write_recipe):
    result = CliRunner().invoke(cli, ["bench", "speed", "--recipe", str(write_recipe(tiny_recipe)),
                                      "--steps", "4", "-o", "train.mixed_precision=bf16"])
    assert result.exit_code == 0, result.output
    assert "roofline_fraction" in result.output and "matmul_gflops_bf16" in result.output


def test_bench_quality_json_has_evaluate_keys_and_budget(tiny_recipe, write_recipe, tmp_path):
    tiny_recipe["train"].update(max_steps=None, epochs=1000)
    result = CliRunner().invoke(cli, ["bench", "quality", "--recipe", str(write_recipe(tiny_recipe)),
                                      "--minutes", "0.05", "--json", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"psnr", "ssim", "l1", "condition_error", "condition_accuracy", "n",
            "steps", "images_seen", "minutes"} <= set(data)
    assert data["n"] == 10 and data["steps"] >= 1
    assert data["images_seen"] == data["steps"] * 4
    assert 0.04 < data["minutes"] < 2
    assert set(data["condition_accuracy"]) == {"hair", "shirt"}
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_bench_bad_recipe_is_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "speed", "--recipe", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "recipe file not found" in result.output
