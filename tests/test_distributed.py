"""Real multi-process training on the CPU: `torchrun --nproc_per_node 2` (gloo), no mocks."""

import json
import os
import subprocess
import sys

import pytest
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


@pytest.mark.parametrize("objective", [None, [{"type": "l1", "weight": 100.0}]], ids=["gan-l1", "no-discriminator"])
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, tiny_recipe, write_recipe, objective):
    """Instance norm (no batch statistics) and no dropout: 2 x batch 4 == 1 x batch 8, with the
    discriminator and without one (an objective that reads none: its DDP wrapper never runs)."""
    tiny_recipe["train"].update(max_steps=3, batch_size=4, checkpoint_every=100)
    if objective is not None:
        tiny_recipe["objective"] = objective
    result = torchrun(write_recipe(tiny_recipe), tmp_path / "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    tiny_recipe["train"]["batch_size"] = 8
    single = train(recipes.from_dict(tiny_recipe), out=tmp_path / "single")
    a, b = load_file(str(tmp_path / "ddp" / "model.safetensors")), load_file(str(single.model))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)


BUDGETED_RUN = '''
"""Train for a time budget under torchrun, rank 1's clock running three times fast (as a busy or
throttled host's pace looks), and write down every horizon each rank's schedule was given."""
import json
import os
import sys
import time
import types
from pathlib import Path

import colorgan.train as train
from colorgan import recipe

RANK = int(os.environ["RANK"])
if RANK == 1:
    train.time = types.SimpleNamespace(perf_counter=lambda: 3 * time.perf_counter(), strftime=time.strftime)
horizons = []
_fit = train.Trainer._fit_schedule_to_budget


def fit_schedule_to_budget(self, now):
    _fit(self, now)
    horizons.append(self.horizon.steps)


train.Trainer._fit_schedule_to_budget = fit_schedule_to_budget
result = train.train(recipe.load(sys.argv[1], [f"train.max_minutes={float(sys.argv[3]) / 60}"]), out=Path(sys.argv[2]))
Path(sys.argv[2], f"horizons{RANK}.json").write_text(json.dumps({"horizons": horizons, "step": result.step}))
'''


def test_a_time_budget_ends_the_schedule_alike_on_every_rank(tmp_path, tiny_recipe, write_recipe):
    """Each rank measures its own pace; the schedule's end is rank 0's on all of them. Were it each
    rank's own, DDP's replicas would step with different learning rates and silently drift apart."""
    tiny_recipe["train"].update(max_steps=1_000_000, lr_schedule="linear", decay_start=0.0, log_every=5,
                                sample_every=10**6, eval_every=10**6, checkpoint_every=10**6)
    (tmp_path / "budgeted_run.py").write_text(BUDGETED_RUN)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(tmp_path / "budgeted_run.py"), str(write_recipe(tiny_recipe)), str(run), "9"]
    result = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((run / f"horizons{rank}.json").read_text()) for rank in (0, 1))
    assert rank0["step"] == rank1["step"] < 1_000_000  # rank 1's clock ended the run for both
    assert len(rank0["horizons"]) >= 3 and rank0["horizons"] == rank1["horizons"]
    assert max(rank0["horizons"]) < 2 * 1_000_000  # the budget moved the end in (2 ranks' steps)
