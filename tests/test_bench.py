"""`colorgan bench` through the CLI on a tiny recipe: every field present and sane (no speed asserted)."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from colorgan.bench import SPEED_FIELDS, reference_step
from colorgan.cli import cli
from colorgan.hardware import Precision
from colorgan.recipe import from_dict
from test_gpu import colorgan

TEXT_FIELDS = ("device", "precision", "compile", "torch", "threads")


def _bench_speed(write_recipe, recipe, *args):
    return CliRunner().invoke(cli, ["bench", "speed", "--recipe", str(write_recipe(recipe)), "--steps", "6", *args])


def test_bench_speed_json_has_every_field(tiny_recipe, write_recipe):
    result = _bench_speed(write_recipe, tiny_recipe, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert tuple(data) == SPEED_FIELDS
    for key in set(SPEED_FIELDS) - set(TEXT_FIELDS):
        assert isinstance(data[key], float) and math.isfinite(data[key]) and data[key] > 0, key
    assert data["flops_per_image"] > 1e5  # a U-Net step is at least this much work
    assert data["device"].startswith("cpu ") and "native bf16: " in data["device"]
    # where the units are there, the bf16 speed that `auto` decides by is named with them
    assert ("x its fp32 time" in data["device"]) is ("native bf16: yes" in data["device"])
    assert data["precision"] in ("bf16", "fp32")
    assert data["compile"] is False  # the tiny recipe's default; auto is off on the CPU too
    assert data["torch"].split(".")[0].isdigit() and data["threads"] >= 1


def test_bench_speed_table_and_overrides(tiny_recipe, write_recipe):
    result = _bench_speed(write_recipe, tiny_recipe, "-o", "train.mixed_precision=no")
    assert result.exit_code == 0, result.output
    assert "roofline_fraction" in result.output and "matmul_gflops_bf16" in result.output
    assert [line.split()[1] for line in result.output.splitlines() if line.startswith("precision ")] == ["fp32"]


@pytest.mark.parametrize("device", ["tpu", "cuda"])  # this process never sees a GPU (conftest)
def test_bench_bad_device_is_one_line_exit_2(tiny_recipe, write_recipe, device):
    for command in (["speed", "--steps", "4"], ["quality", "--minutes", "0.01"]):
        result = CliRunner().invoke(cli, ["bench", *command, "--recipe", str(write_recipe(tiny_recipe)),
                                          "--device", device])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and f"--device {device}:" in result.output


@pytest.mark.parametrize("layout", [False, True])
def test_reference_step_runs_on_the_requested_device(tiny_recipe, layout):
    """The meta device proves every module and batch tensor is moved (on a CPU-only machine the CPU would not)."""
    recipe, meta = from_dict(tiny_recipe), torch.device("meta")
    recipe.train.channels_last = layout
    _, parts, batch = reference_step(recipe, Precision(meta, "no", "test"))
    tensors = [*parts.generator.parameters(), *parts.discriminator.parameters(), *batch.values()]
    assert {t.device for t in tensors} == {meta}
    images = [batch["sketch"], batch["target"]] + [p for p in parts.generator.parameters() if p.dim() == 4]
    expected = torch.channels_last if layout else torch.contiguous_format
    assert all(t.is_contiguous(memory_format=expected) for t in images)


def test_bench_quality_json_has_evaluate_keys_and_budget(tiny_recipe, write_recipe, tmp_path):
    tiny_recipe["train"].update(max_steps=None, epochs=1000)
    result = CliRunner().invoke(cli, ["bench", "quality", "--recipe", str(write_recipe(tiny_recipe)),
                                      "--minutes", "0.05", "--device", "cpu", "--json", "--out", str(tmp_path / "run")])
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


@pytest.mark.gpu
def test_bench_speed_on_cuda(tiny_recipe, write_recipe, gpu_env):
    done = colorgan(["bench", "speed", "--recipe", write_recipe(tiny_recipe), "--device", "cuda", "--steps", "6",
                     "--json"], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["device"].startswith("cuda:0 ") and data["precision"] in ("bf16", "tf32", "fp32")
    assert data["train_images_per_s"] > 0 and data["reference_images_per_s"] > 0


def test_the_plain_loop_takes_turns_outside_colorgans_timed_intervals(tmp_path, tiny_recipe):
    """`bench speed` times its plain loop in `train(after_log=...)`: once per logging step, on the
    main process, and not counted in the interval that `images_per_s` reports."""
    import time

    from colorgan.train import train

    tiny_recipe["train"].update(max_steps=4, log_every=1)
    calls = []
    train(from_dict(tiny_recipe), out=tmp_path / "run", after_log=lambda: (calls.append(1), time.sleep(1.0)))
    assert len(calls) == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seconds = [tiny_recipe["train"]["batch_size"] / r["images_per_s"] for r in records if "images_per_s" in r]
    assert len(seconds) == 4 and max(seconds[1:]) < 1.0, seconds  # the second's sleep is not in them
