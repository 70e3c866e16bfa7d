"""Training through the CLI and the Python API: run folder, resume exactness, accumulation, bf16."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.train import train


def weights(path):
    return load_file(str(path))


def assert_same_weights(a, b, atol=0.0):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        if atol == 0.0:
            assert torch.equal(wa[key], wb[key]), key
        else:
            torch.testing.assert_close(wa[key], wb[key], atol=atol, rtol=1e-4, msg=key)


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_cli_train_writes_a_complete_run_folder(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["log"] = {"with": ["jsonl", "wandb", "tensorboard"]}
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert f"model: {run / 'model.safetensors'}" in result.output

    assert recipes.load(run / "recipe.yaml") == recipes.from_dict(tiny_recipe)
    records = read_metrics(run)
    train_records = [r for r in records if "d_loss" in r]
    assert [r["step"] for r in train_records] == [2, 4, 6]
    for r in train_records:
        assert r["world_size"] == 1 and r["images_per_s"] > 0 and r["lr"] == pytest.approx(2e-4)
        assert all(isinstance(r[k], float) for k in ("d_loss", "g_loss", "g_gan", "l1"))
    val = [r for r in records if "val_l1" in r]
    assert [r["step"] for r in val] == [3, 6] and all(r["val_l1"] > 0 for r in val)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000003.png", "step-000006.png"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000003", "step-000006"]
    assert (run / "model.safetensors").stat().st_size > 1000
    assert list((run / "wandb").glob("offline-run-*")), "W&B offline run folder missing"
    assert json.loads((run / "run.json").read_text())["world_size"] == 1


def test_same_recipe_and_seed_give_the_same_weights(tmp_path, tiny_recipe):
    tiny_recipe["train"]["max_steps"] = 3
    a = train(recipes.from_dict(tiny_recipe), out=tmp_path / "a")
    b = train(recipes.from_dict(tiny_recipe), out=tmp_path / "b")
    assert_same_weights(a.model, b.model)
    c = train(recipes.from_dict(tiny_recipe, ["seed=1"]), out=tmp_path / "c")
    wa, wc = weights(a.model), weights(c.model)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_auto_trains_as_the_precision_it_chose(tmp_path, tiny_recipe, monkeypatch):
    """`auto` probes the CPU after the seed is set (where bf16 is native); the probe must leave the
    generator that augmentation and dropout draw from as it was."""
    from colorgan import hardware

    monkeypatch.setattr(hardware, "bf16_is_native", lambda device: True)
    monkeypatch.setattr(hardware, "measured_bf16_cost", lambda device: hardware.bf16_cost(device, repeats=1))
    tiny_recipe["data"]["augment"] = {"hflip": True, "warp": 2.0}
    tiny_recipe["generator"]["dropout"] = 0.5
    tiny_recipe["train"].update(max_steps=3, mixed_precision="auto")
    auto = train(recipes.from_dict(tiny_recipe), out=tmp_path / "auto")
    chosen = json.loads((tmp_path / "auto" / "run.json").read_text())["precision"]
    tiny_recipe["train"]["mixed_precision"] = "bf16" if chosen == "bf16" else "no"
    explicit = train(recipes.from_dict(tiny_recipe), out=tmp_path / "explicit")
    assert_same_weights(auto.model, explicit.model)


def test_what_a_run_reports_does_not_change_what_it_trains(tmp_path, tiny_recipe):
    """Validating, sampling, logging and checkpointing at every other step leave the weights as
    they were: none of them may draw from the generator that augmentation and dropout use (a
    validation's DataLoader once did, and the EMA's BatchNorm statistics pass, through dropout)."""
    schedules = ("eval_every", "sample_every", "log_every", "checkpoint_every")
    tiny_recipe["data"]["augment"] = {"hflip": True, "warp": 2.0}
    tiny_recipe["generator"].update(dropout=0.5, norm="batch")
    tiny_recipe["train"].update(max_steps=5, ema=0.9, **dict.fromkeys(schedules, 100))
    rare = train(recipes.from_dict(tiny_recipe), out=tmp_path / "rare")
    tiny_recipe["train"].update(dict.fromkeys(schedules, 2))
    often = train(recipes.from_dict(tiny_recipe), out=tmp_path / "often")
    assert_same_weights(rare.model, often.model)


def test_resume_continues_exactly(tmp_path, tiny_recipe):
    """Stop mid-epoch, resume across an epoch boundary: bit-identical to a run never stopped.

    Dropout (U-Net and condition) and BatchNorm make the RNG and buffers part of what must match.
    """
    tiny_recipe["generator"].update(norm="batch", dropout=0.5)
    tiny_recipe["condition"] = {"type": "embedding", "dim": 4, "dropout": 0.3}
    tiny_recipe["train"].update(max_steps=13, checkpoint_every=100, ema=0.9, lr_schedule="linear")
    recipe = recipes.from_dict(tiny_recipe)
    whole = train(recipe, out=tmp_path / "whole")
    paused = train(recipe, out=tmp_path / "paused", stop_at=4)
    assert paused.model is None and paused.step == 4
    assert [p.name for p in (tmp_path / "paused" / "checkpoints").iterdir()] == ["step-000004"]
    resumed = train(recipe, out=tmp_path / "paused", resume="latest")
    assert resumed.step == 13
    assert_same_weights(whole.model, resumed.model)
    steps = [r["step"] for r in read_metrics(tmp_path / "paused") if "d_loss" in r]
    assert steps == [2, 4, 6, 8, 10, 12, 13]


@pytest.mark.parametrize("objective", [None, [{"type": "l1", "weight": 100.0}]], ids=["gan-l1", "no-discriminator"])
def test_gradient_accumulation_equals_a_larger_batch(tmp_path, tiny_recipe, objective):
    if objective is not None:  # an objective that reads no discriminator: the generator's window alone
        tiny_recipe["objective"] = objective
    tiny_recipe["train"].update(max_steps=4, batch_size=8)
    big = train(recipes.from_dict(tiny_recipe), out=tmp_path / "big")
    tiny_recipe["train"].update(batch_size=4, grad_accum=2)
    accumulated = train(recipes.from_dict(tiny_recipe), out=tmp_path / "acc")
    assert_same_weights(big.model, accumulated.model, atol=1e-5)


def test_bf16_on_cpu_keeps_losses_finite(tmp_path, tiny_recipe):
    tiny_recipe["train"].update(max_steps=4, mixed_precision="bf16")
    result = train(recipes.from_dict(tiny_recipe), out=tmp_path / "bf16")
    records = [r for r in read_metrics(result.run) if "d_loss" in r]
    assert records and all(r[k] is not None and abs(r[k]) < 1e4 for r in records for k in ("d_loss", "g_loss"))
    assert result.model.is_file()


def test_existing_run_is_not_overwritten_without_a_flag(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["train"]["max_steps"] = 2
    path, run = write_recipe(tiny_recipe), tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", str(path), "--out", str(run)]).exit_code == 0
    before = (run / "model.safetensors").read_bytes()
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run)])
    assert result.exit_code == 2 and "already holds a run" in result.output
    assert (run / "model.safetensors").read_bytes() == before
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run), "--overwrite", "-o", "seed=3"])
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").read_bytes() != before


def test_resume_with_a_different_model_is_refused(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["train"]["max_steps"] = 4
    path, run = write_recipe(tiny_recipe), tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", str(path), "--out", str(run), "--stop-at", "2"]).exit_code == 0
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(run), "--resume", "latest",
                                      "-o", "generator.base_channels=16"])
    assert result.exit_code == 2
    assert "recipe changes the model (generator)" in result.output


def test_resume_from_an_earlier_checkpoint_logs_each_step_once(tmp_path, tiny_recipe):
    tiny_recipe["train"].update(log_every=1, checkpoint_every=2, eval_every=100, max_steps=7)
    recipe = recipes.from_dict(tiny_recipe)
    run = tmp_path / "run"
    train(recipe, out=run, stop_at=5)
    train(recipe, out=run, resume=str(run / "checkpoints" / "step-000004"))
    steps = [r["step"] for r in read_metrics(run) if "d_loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6, 7]


def test_compile_trains_the_same_model(tmp_path, tiny_recipe):
    """`train.compile: true` (inductor on the CPU here) trains and exports the same weights, up to
    the reordering of float operations the compiler may do."""
    tiny_recipe["train"].update(max_steps=2, sample_every=100, eval_every=100)
    eager = train(recipes.from_dict(tiny_recipe), out=tmp_path / "eager")
    compiled = train(recipes.from_dict(tiny_recipe, ["train.compile=true"]), out=tmp_path / "compiled")
    assert not any("_orig_mod" in key for key in weights(compiled.model))
    assert_same_weights(eager.model, compiled.model, atol=1e-4)


def test_a_time_budget_ends_the_learning_rate_schedule_with_the_run(tmp_path, tiny_recipe):
    """A schedule planned for a million steps, given four seconds: the decay still reaches its end."""
    tiny_recipe["train"].update(max_steps=1_000_000, max_minutes=4 / 60, lr_schedule="linear", decay_start=0.0,
                                log_every=5, sample_every=10**6, eval_every=10**6, checkpoint_every=10**6)
    result = train(recipes.from_dict(tiny_recipe), out=tmp_path / "run")
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run") if "lr" in r]
    assert result.model is not None and result.step < 1_000_000 and len(lrs) > 5
    assert lrs[0] == pytest.approx(2e-4, rel=1e-3)  # before the first pace is known: the planned schedule
    assert max(lrs[len(lrs) // 2:]) < 0.75 * lrs[0], lrs  # decaying by half-time
    assert lrs[-1] < 0.25 * lrs[0], lrs


def test_a_time_budget_counts_the_time_trained_before_a_resume(tmp_path, tiny_recipe):
    """`train.max_minutes` is the run's, not one process's: a run paused after more training time
    than the budget it is resumed with trains nothing more (a fresh clock would train a step), and
    one resumed without a budget trains on to its last step."""
    tiny_recipe["train"].update(max_steps=6, sample_every=10**6, eval_every=10**6)
    paused = train(recipes.from_dict(tiny_recipe), out=tmp_path / "run", stop_at=3)
    assert paused.model is None and paused.step == 3
    spent = train(recipes.from_dict(tiny_recipe, ["train.max_minutes=1e-7"]), out=tmp_path / "run", resume="latest")
    assert spent.step == 3 and spent.model is not None
    rest = train(recipes.from_dict(tiny_recipe), out=tmp_path / "run", resume="latest")
    assert rest.step == 6


def test_resuming_a_finished_run_trains_nothing_more(tmp_path, tiny_recipe):
    tiny_recipe["train"]["max_steps"] = 3
    recipe = recipes.from_dict(tiny_recipe)
    first = train(recipe, out=tmp_path / "run")
    before = weights(first.model)
    again = train(recipe, out=tmp_path / "run", resume="latest")
    assert again.step == 3 and again.model is not None
    after = weights(again.model)
    assert all(torch.equal(before[k], after[k]) for k in before)
