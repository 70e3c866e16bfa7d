"""evaluate(): metrics wiring on the model's own dataset, the CLI, and training's validation."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.data import load_dataset
from colorgan.errors import ColorganError
from colorgan.evaluate import evaluate, flatten
from colorgan.inference import Colorizer
from colorgan.metrics import References
from colorgan.train import train
from colorgan.validation import lower_is_better, validate_generator, validation_references

KEYS = {"psnr", "ssim", "l1", "condition_error", "condition_accuracy", "n"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import TINY

    return train(recipes.from_dict(json.loads(json.dumps(TINY))),
                 out=tmp_path_factory.mktemp("evaluate") / "run").run


@pytest.fixture(scope="module")
def model(run):
    return run / "model.safetensors"


@pytest.fixture(scope="module")
def data(model):
    recipe = Colorizer.load(model, "cpu").recipe
    return load_dataset(recipe.data, recipe.seed)


@pytest.fixture(scope="module")
def test_result(model):
    return evaluate(model, device="cpu")


def check_result(result, n):
    assert set(result) == KEYS and result["n"] == n
    assert 0 < result["psnr"] < 100 and -1 <= result["ssim"] <= 1 and 0 < result["l1"] < 1
    for key in ("condition_error", "condition_accuracy"):
        assert set(result[key]) == {"hair", "shirt"}
    for attr in ("hair", "shirt"):
        assert result["condition_error"][attr] > 0     # an untrained-ish model is far off
        assert 0 <= result["condition_accuracy"][attr] <= 1


def test_test_split_is_the_recipes_holdout(test_result, data):
    check_result(test_result, len(data.test_rows))
    assert 0 < len(data.test_rows) < len(data.frame)


def test_train_split_through_a_colorizer(model, data):
    check_result(evaluate(Colorizer.load(model, "cpu"), split="train"), len(data.train_rows))


def test_evaluate_reproduces_the_runs_last_validation(run, test_result):
    """Training's validation and `colorgan evaluate` are the same function on the same weights."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if "val_l1" in r][-1]
    assert last["step"] == 6
    flat = flatten(test_result, "val_")
    assert set(flat) == {k for k in last if k not in ("step", "val_seconds")}  # val_seconds: its timing
    for key, value in flat.items():
        assert last[key] == pytest.approx(value, rel=1e-6), key


def test_validation_keys_and_which_are_lower_is_better(model, data):
    colorizer = Colorizer.load(model, "cpu")
    metrics = validate_generator(colorizer.generator, data.test, "cpu", colorizer.recipe)
    assert set(metrics) == {"val_l1", "val_psnr", "val_ssim", "val_condition_error_hair", "val_condition_error_shirt",
                            "val_condition_accuracy_hair", "val_condition_accuracy_shirt"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert lower_is_better("val_l1") and lower_is_better("val_condition_error_shirt")
    assert not lower_is_better("val_psnr") and not lower_is_better("val_condition_accuracy_hair")


def test_validation_builds_the_references_once(model, monkeypatch):
    """Regions and value colours depend on the ground truth only: built at the first validation,
    reused by every later one (training validates every `eval_every` steps)."""
    colorizer = Colorizer.load(model, "cpu")
    held_out = load_dataset(colorizer.recipe.data, colorizer.recipe.seed).test  # a fresh object: nothing cached
    built = []
    build = References.build
    monkeypatch.setattr(References, "build", classmethod(lambda cls, *a, **k: built.append(1) or build(*a, **k)))
    first = validate_generator(colorizer.generator, held_out, "cpu", colorizer.recipe)
    refs = validation_references(held_out, colorizer.recipe.data, "cpu")
    second = validate_generator(colorizer.generator, held_out, "cpu", colorizer.recipe)
    assert len(built) == 1 and validation_references(held_out, colorizer.recipe.data, "cpu") is refs
    assert first == pytest.approx(second, nan_ok=True)


def test_flatten_turns_nothing_to_judge_into_nan():
    flat = flatten({"psnr": 1.0, "condition_error": {"hair": None}, "n": 3}, "val_")
    assert flat["val_psnr"] == 1.0 and math.isnan(flat["val_condition_error_hair"]) and "val_n" not in flat


def test_cli_evaluate_json_is_one_object_with_the_keys(model, test_result):
    result = CliRunner().invoke(cli, ["evaluate", str(model), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert set(parsed) == KEYS
    assert parsed["n"] == test_result["n"]
    assert parsed["condition_error"] == pytest.approx(test_result["condition_error"])
    assert set(parsed["condition_accuracy"]) == {"hair", "shirt"}


def test_cli_evaluate_table_on_every_row_of_a_data_folder(model, data):
    result = CliRunner().invoke(cli, ["evaluate", str(model), str(data.root), "--split", "all"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"images       {len(data.frame)}" in out
    for word in ("PSNR", "SSIM", "L1", "condition error", "condition accuracy", "hair", "shirt"):
        assert word in out


def test_cli_evaluate_bad_data_folder(model, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(model), str(tmp_path / "none"), "--split", "all"])
    assert result.exit_code == 2 and "dataset folder not found" in result.output


def test_per_character_scores_are_each_characters_own_worst_first(model, data, test_result):
    result = CliRunner().invoke(cli, ["evaluate", str(model), "--json", "--device", "cpu", "--per-character"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    characters = parsed["characters"]
    held_out = set(data.frame["input"].iloc[data.test_rows])
    assert {c["character"] for c in characters} == held_out
    assert sum(c["n"] for c in characters) == parsed["n"] == test_result["n"]
    psnrs = [c["psnr"] for c in characters]
    assert psnrs == sorted(psnrs)  # worst first
    for c in characters:  # each character scored alone, with the same references
        assert set(c) == KEYS | {"character"} and set(c["condition_accuracy"]) == {"hair", "shirt"}
    weighted = sum(c["psnr"] * c["n"] for c in characters) / parsed["n"]
    assert weighted == pytest.approx(parsed["psnr"])
    table = CliRunner().invoke(cli, ["evaluate", str(model), "--device", "cpu", "--per-character"])
    assert "character (worst first)" in table.stdout
    first_listed = table.stdout.split("character (worst first)")[1].splitlines()[1]
    assert first_listed.startswith(characters[0]["character"][:32])


def test_per_character_by_accuracy_puts_the_wrong_colours_first(model):
    by_psnr = json.loads(CliRunner().invoke(cli, ["evaluate", str(model), "--json", "--device", "cpu",
                                                  "--per-character"]).stdout)["characters"]
    result = CliRunner().invoke(cli, ["evaluate", str(model), "--json", "--device", "cpu", "--per-character",
                                      "--rank-by", "accuracy"])
    assert result.exit_code == 0, result.output
    characters = json.loads(result.stdout)["characters"]
    assert sorted(characters, key=lambda c: c["character"]) == sorted(by_psnr, key=lambda c: c["character"])
    keys = [(np.mean(list(c["condition_accuracy"].values())), c["psnr"]) for c in characters]
    assert keys == sorted(keys)  # lowest accuracy first, PSNR breaking ties
    assert len({k[0] for k in keys}) > 1, "the tiny model should miss some characters' colours more than others"
    with pytest.raises(ColorganError, match="rank_by: expected one of psnr, accuracy, got 'ssim'"):
        evaluate(model, per_character=True, rank_by="ssim")
    bad = CliRunner().invoke(cli, ["evaluate", str(model), "--per-character", "--rank-by", "ssim"])
    assert bad.exit_code == 2 and "'ssim' is not one of 'psnr', 'accuracy'" in bad.output
    alone = CliRunner().invoke(cli, ["evaluate", str(model), "--rank-by", "accuracy"])
    assert alone.exit_code == 2 and "--rank-by orders the characters of --per-character; add --per-character" in alone.output


def test_cli_spells_out_the_rankings_it_offers():
    from colorgan import cli as cli_module
    from colorgan.evaluate import RANKINGS

    assert cli_module.RANKINGS == RANKINGS
