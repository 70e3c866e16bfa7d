"""A crash costs nothing but the time since the last checkpoint.

Real processes, real kills: `python -m colorgan train` is SIGKILLed mid-training and mid-checkpoint
write, then resumed with `--resume latest`. The storage failing (disk full, read-only) ends the run
with exit code 2 and one line, and never leaves a half-written checkpoint that looks like the latest.

SIGINT/SIGTERM (checkpoint, exit 130/143, resume) and NaN/Inf losses are covered in test_faults.py.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from click.testing import CliRunner
from safetensors.torch import load_file

from colorgan.cli import cli
from colorgan.run_state import checkpoint_dirs, latest_checkpoint
from hardening_helpers import GATE, child_env, logged_steps, save_state_plugin, start_training, wait_until


def quiet(recipe: dict, **train) -> dict:
    """Log every step; no sample sheets or validation in the way (they are not what is tested)."""
    recipe["train"].update(log_every=1, sample_every=10_000, eval_every=10_000, **train)
    return recipe


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def tmp_folders(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob(".tmp-*"))


def resume(recipe_path: Path, run: Path, *args: str):
    return CliRunner().invoke(cli, ["train", str(recipe_path), "--out", str(run), "--resume", "latest", *args])


def test_sigkill_mid_training_then_resume_gives_identical_weights(tmp_path, tiny_recipe, write_recipe):
    """Killed at a random step after a checkpoint; resumed; bit-identical to a run never killed.

    Both runs are subprocesses with the same environment (one thread), so the only difference
    between them is the kill.
    """
    quiet(tiny_recipe, max_steps=16, checkpoint_every=3)
    path = write_recipe(tiny_recipe)
    kill_after = random.randint(4, 9)  # a step past the first checkpoint (3), mid-epoch or not
    whole = start_training(path, tmp_path / "whole")
    killed = start_training(path, tmp_path / "killed")
    run = tmp_path / "killed"
    try:
        wait_until(lambda: any(s >= kill_after for s in logged_steps(run)), killed, f"step {kill_after}")
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        assert whole.wait(timeout=180) == 0, whole.communicate()[1][-3000:]
    finally:
        for proc in (whole, killed):
            if proc.poll() is None:
                proc.kill()
    assert not (run / "model.safetensors").exists()
    last = latest_checkpoint(run)
    assert last is not None and int(last.name.split("-")[1]) >= 3, f"killed after step {kill_after}"
    resumed = subprocess.run(
        [*killed.args, "--resume", "latest"], env=child_env(), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(tmp_path / "whole" / "model.safetensors", run / "model.safetensors")
    assert tmp_folders(run) == []
    assert [s for s, _ in checkpoint_dirs(run)] == [15, 16]


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    """SIGKILL while `save_state` is half-way through the second checkpoint (a plugin holds it there)."""
    marker = tmp_path / "saving"
    plugin = save_state_plugin(tmp_path, "hardening_hang_save", "hang", on_save=2, marker=marker)
    tiny_recipe["plugins"] = [plugin]
    quiet(tiny_recipe, max_steps=6, checkpoint_every=2)
    path, run = write_recipe(tiny_recipe), tmp_path / "run"
    proc = start_training(path, run, env=dict(child_env(tmp_path), **{GATE: "1"}))
    try:
        wait_until(marker.exists, proc, "the second checkpoint write")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    partial = run / "checkpoints" / ".tmp-step-000004"
    assert marker.read_text() == str(partial)
    assert tmp_folders(run) == [".tmp-step-000004"]
    assert (partial / "model.safetensors").stat().st_size < (run / "checkpoints" / "step-000002" /
                                                             "model.safetensors").stat().st_size
    assert latest_checkpoint(run) == run / "checkpoints" / "step-000002"
    load_file(str(latest_checkpoint(run) / "model.safetensors"))  # the complete one reads back

    monkeypatch.syspath_prepend(str(tmp_path))  # the resumed run imports the plugin (ungated: no fault)
    result = resume(path, run, "--stop-at", "4")
    assert result.exit_code == 0, result.output
    assert tmp_folders(run) == [], "the partial checkpoint must be cleaned up by the next save"
    assert [s for s, _ in checkpoint_dirs(run)] == [2, 4]
    assert "resumed_from" in (run / "run.json").read_text() and "step-000002" in (run / "run.json").read_text()
    result = resume(path, run)
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").is_file()


def test_disk_full_during_a_checkpoint_is_one_clear_line(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    """save_state raises ENOSPC after writing part of the checkpoint: exit 2, one line naming the
    checkpoint, the partial folder removed, the previous checkpoint still the latest."""
    monkeypatch.setattr(Accelerator, "save_state", Accelerator.save_state)  # undone after the test
    monkeypatch.setenv(GATE, "1")
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_recipe["plugins"] = [save_state_plugin(tmp_path, "hardening_enospc_save", "enospc", on_save=2)]
    quiet(tiny_recipe, max_steps=6, checkpoint_every=2)
    path, run = write_recipe(tiny_recipe), tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Traceback" not in result.output
    assert f"{run / 'checkpoints' / 'step-000004'}: cannot write checkpoint (No space left on device)" in error[0]
    assert f"the last complete one is {run / 'checkpoints' / 'step-000002'}" in error[0]
    assert tmp_folders(run) == []
    assert latest_checkpoint(run) == run / "checkpoints" / "step-000002"
    assert not (run / "model.safetensors").exists()


# --- a real full disk and a real read-only disk (a small tmpfs; needs root and mount rights) ---------


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs under tmp_path: `mount(size_kb)` -> its folder; unmounted afterwards."""
    mounted = []

    def mount(size_kb: int, read_only: bool = False) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    def remount_read_only(point: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    mount.remount_read_only = remount_read_only
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    yield mount
    for point in mounted:
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def paused_run(tmp_path: Path, recipe: dict, write_recipe) -> tuple[Path, Path, int]:
    """A run paused at step 3 (one checkpoint) and the size of everything it wrote, in bytes."""
    path, run = write_recipe(recipe), tmp_path / "paused"
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run), "--stop-at", "3"])
    assert result.exit_code == 0, result.output
    return path, run, sum(f.stat().st_size for f in run.rglob("*") if f.is_file())


def test_a_really_full_disk_ends_with_a_clear_message(tmp_path, tiny_recipe, write_recipe, small_disk):
    """No plugin: the run folder lives on a disk with room for one checkpoint, not two. The next
    save fails inside torch.save / safetensors (which do not raise OSError) and is still reported
    as a full disk, with the partial checkpoint removed."""
    quiet(tiny_recipe, max_steps=6, checkpoint_every=3, keep_checkpoints=2)
    path, paused, used = paused_run(tmp_path, tiny_recipe, write_recipe)
    disk = small_disk(used // 1024 + used // 2048)  # the paused run and half a checkpoint more
    run = disk / "run"
    shutil.copytree(paused, run)
    result = resume(path, run)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "No space left on device" in result.output
    assert "step-000006" in result.output and f"{run / 'checkpoints' / 'step-000003'}" in result.output
    assert tmp_folders(run) == []
    assert latest_checkpoint(run) == run / "checkpoints" / "step-000003"
    load_file(str(run / "checkpoints" / "step-000003" / "model.safetensors"))


def test_a_read_only_disk_is_refused_with_a_clear_message(tmp_path, tiny_recipe, write_recipe, small_disk):
    quiet(tiny_recipe, max_steps=6, checkpoint_every=3)
    path, paused, used = paused_run(tmp_path, tiny_recipe, write_recipe)
    disk = small_disk(used // 1024 * 2)
    shutil.copytree(paused, disk / "run")
    small_disk.remount_read_only(disk)
    before = sorted((p.relative_to(disk), p.stat().st_mtime_ns) for p in disk.rglob("*"))
    # A resume writes nothing before its checkpoint loads; its first write names the file.
    for args, message in ((["--out", str(disk / "run"), "--resume", "latest"], f"{disk / 'run'}"),
                          (["--out", str(disk / "new")], "cannot create the run folder")):
        result = CliRunner().invoke(cli, ["train", str(path), *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert message in result.output and "Read-only file system" in result.output
    assert sorted((p.relative_to(disk), p.stat().st_mtime_ns) for p in disk.rglob("*")) == before
