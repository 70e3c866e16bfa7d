"""On a CUDA GPU (marker `gpu`, skipped elsewhere): training picks the device and precision policy,
the non-finite guard stops the run without a per-step host sync, and the run folder says what ran.

These run `colorgan` in a subprocess that sees the GPU (the test process itself runs on the CPU).
"""

import json
import subprocess
import sys

import pytest

from test_faults import NAN_PLUGIN

pytestmark = pytest.mark.gpu


def colorgan(args, env, cwd=None):
    return subprocess.run([sys.executable, "-m", "colorgan", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_training_on_the_gpu_resolves_bf16_and_channels_last(tmp_path, tiny_recipe, write_recipe, gpu_env):
    tiny_recipe["train"]["mixed_precision"] = "auto"
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "colorgan: device cuda" in done.stderr and "precision bf16" in done.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["device"].startswith("cuda") and info["precision"] == "bf16" and info["channels_last"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["d_loss"] == r["d_loss"] for r in records if "d_loss" in r)  # not NaN
    assert (run / "model.safetensors").is_file()


def test_fp32_on_the_gpu_is_tf32(tmp_path, tiny_recipe, write_recipe, gpu_env):
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)  # tiny: "no"
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["precision"] == "tf32"


def test_the_guard_stops_a_non_finite_run_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    (tmp_path / "nan_loss_plugin.py").write_text(NAN_PLUGIN)
    tiny_recipe.update(plugins=["nan_loss_plugin"], loss={"type": "nan-after", "after": 4})
    tiny_recipe["train"].update(checkpoint_every=2)
    run = tmp_path / "run"
    env = dict(gpu_env, PYTHONPATH=str(tmp_path))
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "stopped at step 4: non-finite loss (d_loss=nan" in done.stderr
    assert (run / "checkpoints" / "step-000002").is_dir() and not (run / "checkpoints" / "step-000004").exists()


def test_sample_and_evaluate_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    run = tmp_path / "run"
    assert colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env).returncode == 0
    done = colorgan(["evaluate", run / "model.safetensors", "--json", "--device", "cuda"], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["n"] > 0


def test_compile_auto_trains_with_cuda_graphs_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    """`train.compile: auto` is torch.compile with CUDA graphs on one GPU, and the run completes
    with its validations, sample sheets, checkpoints and model file."""
    tiny_recipe["train"].update(compile="auto", mixed_precision="auto")
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["compile"] == "reduce-overhead"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_psnr" in r] == [3, 6]
    assert all(r["d_loss"] == r["d_loss"] for r in records if "d_loss" in r)  # not NaN
    assert (run / "model.safetensors").is_file() and (run / "checkpoints" / "step-000006").is_dir()
