"""Faults during training: signals checkpoint and exit 130/143; NaN stops (or skips) cleanly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from colorgan.cli import cli
from colorgan.run_state import checkpoint_dirs

NAN_PLUGIN = '''
import torch
from colorgan.registry import LOSSES

@LOSSES.register("nan-after")
class NanAfter:
    """LSGAN that turns NaN from its `after`-th discriminator call on: a stand-in for a diverging run."""

    def __init__(self, after=4):
        self.after, self.calls = after, 0

    def d_loss(self, real, fake):
        self.calls += 1
        loss = ((real - 1) ** 2).mean() + (fake ** 2).mean()
        return loss * float("nan") if self.calls >= self.after else loss

    def g_loss(self, fake):
        return ((fake - 1) ** 2).mean()
'''


def start_colorgan(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "colorgan", *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(run, proc, count, timeout=120):
    deadline = time.time() + timeout
    metrics = run / "metrics.jsonl"
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("training did not log in time")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_resume_works(tmp_path, tiny_recipe, write_recipe, signum, code):
    tiny_recipe["train"].update(max_steps=100000, checkpoint_every=100000, log_every=1,
                                sample_every=100000, eval_every=100000)
    path, run = write_recipe(tiny_recipe), tmp_path / "run"
    proc = start_colorgan("train", path, "--out", run)
    wait_for_steps(run, proc, 3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "checkpoint written" in err and "Traceback" not in err
    (step, folder), = checkpoint_dirs(run)
    assert step >= 3 and (folder / "model.safetensors").is_file()
    assert not (run / "model.safetensors").exists()
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run), "--resume", "latest",
                                      "--stop-at", str(step + 2)])
    assert result.exit_code == 0, result.output
    assert [s for s, _ in checkpoint_dirs(run)][-1] == step + 2


def test_bench_quality_stopped_by_sigterm_exits_143_without_scoring(tmp_path, tiny_recipe, write_recipe):
    """A budgeted benchmark stopped early (a job's time limit) says so and exits as `train` does,
    rather than failing to score a model it never wrote."""
    tiny_recipe["train"].update(max_steps=None, epochs=100000, log_every=1, checkpoint_every=100000,
                                sample_every=100000, eval_every=100000)
    run = tmp_path / "run"
    proc = start_colorgan("bench", "quality", "--recipe", write_recipe(tiny_recipe), "--minutes", "5",
                          "--device", "cpu", "--out", run)
    wait_for_steps(run, proc, 3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and out == ""
    assert err.strip().splitlines()[-1].endswith(f"nothing scored; checkpoint in {run}")
    (step, _), = checkpoint_dirs(run)
    assert f"interrupted at step {step};" in err


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    (tmp_path / "nan_loss_plugin.py").write_text(NAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_recipe.update(plugins=["nan_loss_plugin"], loss={"type": "nan-after", "after": 4})
    tiny_recipe["train"].update(checkpoint_every=2)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(run)])
    assert result.exit_code == 2
    assert "stopped at step 4: non-finite loss (d_loss=nan" in result.output
    assert f"last good checkpoint: {run / 'checkpoints' / 'step-000002'}" in result.output
    assert [s for s, _ in checkpoint_dirs(run)] == [2]
    assert not (run / "model.safetensors").exists()


def test_skip_nonfinite_skips_and_logs_the_step(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    plugin = NAN_PLUGIN.replace("if self.calls >= self.after", "if self.calls == self.after")
    (tmp_path / "nan_once_plugin.py").write_text(plugin.replace('"nan-after"', '"nan-once"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_recipe.update(plugins=["nan_once_plugin"], loss={"type": "nan-once", "after": 3})
    tiny_recipe["train"].update(skip_nonfinite=True)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(run)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("skipped_nonfinite")] == [3]
    assert (run / "model.safetensors").is_file()
