"""Real multi-process training on the CPU: `torchrun --nproc_per_node 2` (gloo), no mocks."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from colorgan import recipe as recipes
from colorgan.train import train


def torchrun(recipe_path, run, *args, nproc=2, timeout=300, **env_vars):
    env = dict(os.environ, OMP_NUM_THREADS="1", **env_vars)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "colorgan", "train", str(recipe_path), "--out", str(run), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_processes_are_two_ranks(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["train"].update(max_steps=4, sample_every=2, checkpoint_every=2, mixed_precision="auto")
    run = tmp_path / "run"
    result = torchrun(write_recipe(tiny_recipe), run)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    # `auto` resolves under torchrun (that every rank takes rank 0's choice: the next test)
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


RANKS_DISAGREE = '''
"""Test plugin: each rank's `auto` measurement comes out differently (rank 0 bf16, the others fp32),
as timings on busy cores can; each rank writes down the precision it trained in."""
import os
from pathlib import Path

import colorgan.train as train

RANK = int(os.environ["RANK"])
_resolve = train.resolve_precision


def auto_precision(device):
    return ("bf16", "auto: rank 0 measured bf16 faster") if RANK == 0 else ("no", f"auto: rank {RANK} measured it slower")


def resolve_precision(requested, device, auto=None):
    precision = _resolve(requested, device, auto)
    Path(os.environ["PRECISION_LOG"], f"rank{RANK}").write_text(precision.name)
    return precision


train.auto_precision = auto_precision
train.resolve_precision = resolve_precision
'''


def test_every_rank_trains_in_rank_zeros_auto_precision(tmp_path, tiny_recipe, write_recipe):
    """Ranks whose own measurements disagree still train in one precision, rank 0's: DDP would
    otherwise average gradients from steps computed in two precisions."""
    (tmp_path / "ranks_disagree.py").write_text(RANKS_DISAGREE)
    log = tmp_path / "precision"
    log.mkdir()
    tiny_recipe.update(plugins=["ranks_disagree"])
    tiny_recipe["train"].update(max_steps=2, checkpoint_every=100, mixed_precision="auto")
    run = tmp_path / "run"
    result = torchrun(write_recipe(tiny_recipe), run, PYTHONPATH=str(tmp_path), PRECISION_LOG=str(log))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name: p.read_text() for p in log.iterdir()} == {"rank0": "bf16", "rank1": "bf16"}
    info = json.loads((run / "run.json").read_text())
    assert (info["mixed_precision"], info["precision_reason"]) == ("bf16", "auto: rank 0 measured bf16 faster")


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
