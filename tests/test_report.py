"""`colorgan report`: curves and sample sheets of a run in one PNG."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.errors import ColorganError
from colorgan.evaluate import evaluate
from colorgan.report import PANELS, evenly, make_report, read_metrics, sample_sheets
from colorgan.report_worst import SHOWN, shown_rows, worst_characters
from colorgan.train import train


def _train(tmp_path_factory, **changes):
    from conftest import TINY

    recipe = json.loads(json.dumps(TINY))
    for section, values in changes.items():
        recipe[section].update(values)
    return train(recipes.from_dict(recipe), out=tmp_path_factory.mktemp("report") / "run").run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three characters, so that the two worst are a choice (and not in the dataset's order)."""
    return _train(tmp_path_factory, data={"icons": {"characters": 3}})


@pytest.fixture(scope="module")
def ranked(run):
    """`colorgan evaluate --per-character`'s ranking of the run's held-out characters."""
    return evaluate(run / "model.safetensors", per_character=True)["characters"]


def test_report_has_the_curve_panels_and_sheets_by_step(run, tmp_path):
    report = make_report(run, tmp_path / "r.png")
    curves = [title for title, _, _ in PANELS]
    assert report.panels == curves + ["samples at step 3", "samples at step 6"]
    assert report.sheets == [3, 6]
    assert "Validation condition accuracy" in report.panels and "Discriminator and adversarial loss" in report.panels
    with Image.open(report.path) as img:
        assert img.format == "PNG" and img.width >= 1500 and img.height >= 1000


def test_cli_report_default_out_is_in_the_run(run):
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "report.png").is_file() and str(run / "report.png") in result.output


def test_cli_report_without_metrics_is_a_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "no metrics.jsonl" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "report.png").exists()


def test_read_metrics_keeps_the_last_value_per_step_and_skips_broken_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "d_loss": 2.0}\n{"step": 2, "d_loss": 1.5, "val_l1": null}\n'
                    '{"step": 2, "d_loss": 1.0}\n{"step": 3, "d_lo')
    assert read_metrics(path) == {"d_loss": [(1, 2.0), (2, 1.0)]}


def test_sheets_are_evenly_spaced_first_and_last_included(tmp_path):
    (tmp_path / "samples").mkdir()
    for step in range(10, 110, 10):
        (tmp_path / "samples" / f"step-{step:06d}.png").write_bytes(b"")
    assert [s for s, _ in sample_sheets(tmp_path, 4)] == [10, 40, 70, 100]
    assert sample_sheets(tmp_path, 0) == []
    assert len(sample_sheets(tmp_path, 20)) == 10
    assert evenly("abcde", 4) == list("abde") and evenly("abcde", 1) == ["e"] and evenly("ab", 4) == ["a", "b"]


def test_report_without_samples_draws_only_curves(run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text())
    report = make_report(bare)
    assert report.sheets == [] and len(report.panels) == len(PANELS)
    assert report.path == bare / "report.png"
    (bare / "metrics.jsonl").write_text("")
    with pytest.raises(ColorganError, match="no metrics logged"):
        make_report(bare)


# --- --worst N: the worst held-out characters beside their targets ---------------------------


def test_report_worst_shows_the_worst_characters_in_evaluates_order(run, ranked, tmp_path):
    assert len(ranked) == 3  # so picking 2 leaves one out
    plain = make_report(run, tmp_path / "plain.png")
    report = make_report(run, tmp_path / "worst.png", worst=2)
    assert report.worst == [c["character"] for c in ranked[:2]]
    assert report.panels[:len(plain.panels)] == plain.panels and report.sheets == plain.sheets
    shown = report.panels[len(plain.panels):]
    assert len(shown) == 2
    for i, (title, scores) in enumerate(zip(shown, ranked), 1):
        assert title.startswith(f"worst {i}: {scores['character']}\n")
        assert f"PSNR {scores['psnr']:.2f} dB" in title
        assert all(f"{a} {v:.2f}" in title for a, v in scores["condition_accuracy"].items())
    with Image.open(plain.path) as small, Image.open(report.path) as tall:
        assert tall.width == small.width and tall.height >= small.height + 2 * 250


def test_worst_characters_show_held_out_rows_spread_over_their_conditions(run, ranked):
    worst = worst_characters(run, 5)  # more than there are: all three
    assert [w.scores for w in worst] == ranked
    for w in worst:
        conditions = [c for c, *_ in w.shown]
        assert len(conditions) == min(SHOWN, w.scores["n"]) == 4
        assert conditions == sorted(conditions, key=lambda c: tuple(c.values()))
        assert len({tuple(c.items()) for c in conditions}) == len(conditions)
        assert w.sketch.shape == (32, 32) and 0 <= w.sketch.min() < w.sketch.max() <= 1
        for _, pred, target, _ in w.shown:
            assert pred.shape == target.shape == (32, 32, 3) and pred.dtype == target.dtype == "uint8"
        assert any((target != w.shown[0][2]).any() for _, _, target, _ in w.shown[1:])  # not one row repeated


def test_worst_by_accuracy_shows_the_images_whose_colours_missed_first(run):
    by_accuracy = evaluate(run / "model.safetensors", per_character=True, rank_by="accuracy")["characters"]
    worst = worst_characters(run, 5, rank_by="accuracy")
    assert [w.scores for w in worst] == by_accuracy
    assert any(missed for w in worst for *_, missed in w.shown), "the tiny model should miss some colours"
    for w in worst:
        missed = [bool(m) for *_, m in w.shown]
        assert len(missed) == min(SHOWN, w.scores["n"]) and missed == sorted(missed, reverse=True)  # misses first
        # the labels agree with evaluate's accuracy: of an attribute's misses, only the rows not shown can be absent
        n, hidden = w.scores["n"], w.scores["n"] - len(w.shown)
        for attribute, accuracy in w.scores["condition_accuracy"].items():
            labelled = sum(attribute in m for *_, m in w.shown)
            assert round((1 - accuracy) * n) - hidden <= labelled <= round((1 - accuracy) * n)


@pytest.mark.parametrize("missed_rows, by_accuracy", [
    ({3, 7}, [3, 7, 0, 9]),                 # the misses, then the others spread (first and last)
    ({1, 2, 4, 5, 8, 9}, [1, 2, 4, 5]),     # more misses than are shown: the first ones
    (set(), [0, 3, 6, 9]),                  # none: as by PSNR
])
def test_shown_rows_put_the_misses_first_when_ranked_by_accuracy(missed_rows, by_accuracy):
    rows = list(range(10))
    missed = {i: ["hair"] if i in missed_rows else [] for i in rows}
    assert shown_rows(rows, missed, "psnr") == [0, 3, 6, 9]  # spread over the conditions, misses or not
    assert shown_rows(rows, missed, "accuracy") == by_accuracy


def test_cli_report_worst_writes_the_taller_png(run, tmp_path):
    result = CliRunner().invoke(cli, ["report", str(run), "--worst", "1", "--sheets", "0",
                                      "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "r.png") as img:
        assert img.format == "PNG"
        assert img.height >= 2 * 360 + 250  # two rows of curves and one character


def test_cli_report_worst_without_a_model_is_one_line(run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text())
    result = CliRunner().invoke(cli, ["report", str(bare), "--worst", "2"])
    assert result.exit_code == 2
    assert "no model.safetensors" in result.output and "--worst" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (bare / "report.png").exists()
    assert CliRunner().invoke(cli, ["report", str(bare)]).exit_code == 0  # without --worst: as before
    alone = CliRunner().invoke(cli, ["report", str(bare), "--rank-by", "accuracy"])
    assert alone.exit_code == 2 and "--rank-by orders the characters of --worst N; add --worst N" in alone.output


def test_report_worst_without_a_held_out_split_is_one_line(tmp_path_factory):
    run = _train(tmp_path_factory, data={"holdout": "none"},
                 train={"max_steps": 1, "log_every": 1, "sample_every": 1, "eval_every": 1, "checkpoint_every": 1})
    with pytest.raises(ColorganError, match=r"\(data.holdout: none\) leaves no test rows; --worst has no held-out"):
        make_report(run, worst=1)
    result = CliRunner().invoke(cli, ["report", str(run), "--worst", "1"])
    assert result.exit_code == 2 and "(data.holdout: none) leaves no test rows" in result.output
    assert f"no held-out characters of {run} to rank" in result.output
    assert "Traceback" not in result.output and not (run / "report.png").exists()
