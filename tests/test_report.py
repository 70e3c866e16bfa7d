"""`colorgan report`: curves and sample sheets of a run in one PNG."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.errors import ColorganError
from colorgan.report import PANELS, make_report, read_metrics, sample_sheets
from colorgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import TINY

    return train(recipes.from_dict(json.loads(json.dumps(TINY))),
                 out=tmp_path_factory.mktemp("report") / "run").run


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
