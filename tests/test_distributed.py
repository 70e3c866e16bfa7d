"""Real multi-process training on the CPU: `torchrun --nproc_per_node 2` (gloo), no mocks."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from colorgan import recipe as recipes
from colorgan.train import train


def torchrun(recipe_path, run, *args, nproc=2, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "colorgan", "train", str(recipe_path), "--out", str(run), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_processes_are_two_ranks(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["train"].update(max_steps=4, sample_every=2, checkpoint_every=2, mixed_precision="auto")
    run = tmp_path / "run"
    result = torchrun(write_recipe(tiny_recipe), run)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    # `auto` resolves under torchrun (rank 0's choice is broadcast; both ranks would agree here anyway)
    assert info["world_size"] == 2 and info["precision_reason"].startswith("auto: ")
    assert result.stderr.count("colorgan: device cpu") == 1  # printed by the main process
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "d_loss" in r]
    assert steps == [2, 4], "each step must be logged once (by rank 0), not once per rank"
    assert all(r["world_size"] == 2 for r in records if "d_loss" in r)
    assert (run / "model.safetensors").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    # Each rank saved its own RNG state: a resume restores both.
    assert len(list((run / "checkpoints" / "step-000004").glob("random_states_*.pkl"))) == 2


def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, tiny_recipe, write_recipe):
    """Instance norm (no batch statistics) and no dropout: 2 x batch 4 == 1 x batch 8."""
    tiny_recipe["train"].update(max_steps=3, batch_size=4, checkpoint_every=100)
    result = torchrun(write_recipe(tiny_recipe), tmp_path / "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    tiny_recipe["train"]["batch_size"] = 8
    single = train(recipes.from_dict(tiny_recipe), out=tmp_path / "single")
    a, b = load_file(str(tmp_path / "ddp" / "model.safetensors")), load_file(str(single.model))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)
