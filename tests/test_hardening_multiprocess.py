"""One rank of a multi-process run dies: the others exit (no hang), the checkpoint stays intact.

A real `torchrun --standalone --nproc_per_node 2` on the CPU (gloo). A recipe plugin's loss makes
rank 1 call `os._exit(1)` in the middle of a step after the second checkpoint, as a segfault, an
OOM kill or a lost machine would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from colorgan.run_state import checkpoint_dirs, latest_checkpoint
from hardening_helpers import child_env

DIE_PLUGIN = '''
import os
from colorgan.registry import LOSSES


@LOSSES.register("die-on-rank")
class DieOnRank:
    """LSGAN whose process exits hard on rank `rank` at its `at`-th discriminator loss."""

    def __init__(self, rank=1, at=5):
        self.rank, self.at, self.calls = rank, at, 0

    def d_loss(self, real, fake):
        self.calls += 1
        if self.calls == self.at and os.environ.get("RANK") == str(self.rank):
            os._exit(1)
        return ((real - 1) ** 2).mean() + (fake ** 2).mean()

    def g_loss(self, fake):
        return ((fake - 1) ** 2).mean()
'''

DIE_IN_SAVE_PLUGIN = '''
import os
from accelerate import Accelerator

_original, _calls = Accelerator.save_state, [0]


def save_state(self, output_dir=None, **kwargs):
    """Rank 1 dies inside the third checkpoint write, after rank 0 has started it."""
    _calls[0] += 1
    if _calls[0] == 3 and os.environ.get("RANK") == "1":
        os._exit(1)
    return _original(self, output_dir, **kwargs)


Accelerator.save_state = save_state
'''

LIMIT = 120  # seconds: far more than the run needs; a hang would hit it


@pytest.mark.parametrize("where", ["mid-step", "mid-checkpoint"])
def test_a_rank_that_dies_stops_the_others_and_keeps_the_checkpoint(tmp_path, tiny_recipe, write_recipe, where):
    if where == "mid-step":  # rank 1 exits inside step 5 (its 5th loss), after the checkpoints of steps 2 and 4
        (tmp_path / "hardening_die_plugin.py").write_text(DIE_PLUGIN)
        tiny_recipe.update(plugins=["hardening_die_plugin"], loss={"type": "die-on-rank", "rank": 1, "at": 5})
    else:  # rank 1 exits when the checkpoint of step 6 starts; rank 0 is writing its part
        (tmp_path / "hardening_die_in_save_plugin.py").write_text(DIE_IN_SAVE_PLUGIN)
        tiny_recipe.update(plugins=["hardening_die_in_save_plugin"])
    tiny_recipe["train"].update(max_steps=100, checkpoint_every=2, log_every=1, sample_every=1000,
                                eval_every=1000, keep_checkpoints=3)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "colorgan", "train", str(write_recipe(tiny_recipe)), "--out", str(run)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=child_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise AssertionError(f"torchrun still running after {LIMIT} s: the surviving rank hangs")
    elapsed = time.monotonic() - started
    assert proc.returncode != 0, err[-3000:]
    print(f"torchrun exited {proc.returncode} after {elapsed:.1f} s")
    # torchrun's failure report has rank 1 exiting 1, and stops rank 0; no worker is left behind.
    # (Usually rank 1 is its "Root Cause". When rank 0 is also gone by torchrun's next poll, both
    # failures carry that poll's time and the tie names rank 0 "first observed": seen once in CI,
    # rank 0 having been aborted by gloo when its peer's connection closed mid-collective.)
    report = err[err.index("Failures:"):] if "Failures:" in err else err[-3000:]
    failures = [block for block in report.split("[")[1:] if "rank      :" in block]
    assert any("rank      : 1" in block and "exitcode  : 1 " in block for block in failures), report
    children = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True).stdout.split()
    assert children == [], f"worker processes left running: {children}"

    # The checkpoints before the death are complete; the one being written (if any) never counts.
    assert [s for s, _ in checkpoint_dirs(run)] == [2, 4]
    assert not list((run / "checkpoints").glob(".tmp-*")) or latest_checkpoint(run).name == "step-000004"
    last = latest_checkpoint(run)
    files = {p.name for p in last.iterdir()}
    assert {"model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin",
            "random_states_0.pkl", "random_states_1.pkl"} <= files, files
    for name in ("model.safetensors", "model_1.safetensors"):
        weights = load_file(str(last / name))
        assert weights and all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
    assert not (run / "model.safetensors").exists()

    # ... and both ranks resume from it (the plugin's fault lies beyond step 6 in a fresh process).
    resumed = subprocess.run([*cmd, "--resume", "latest", "--stop-at", "6"], env=child_env(tmp_path),
                             capture_output=True, text=True, timeout=LIMIT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [s for s, _ in checkpoint_dirs(run)] == [2, 4, 6]
    assert not list((run / "checkpoints").glob(".tmp-*"))
