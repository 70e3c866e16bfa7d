"""`colorgan data icons` and `colorgan data check` through Click's runner."""

import hashlib

from click.testing import CliRunner

from colorgan.cli import cli


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_icons_are_drawn_and_byte_identical_for_a_seed(tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(cli, ["data", "icons", str(tmp_path / name), "--size", "32", "--characters", "3"])
        assert result.exit_code == 0, result.output
        assert "wrote 75 rows" in result.output
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert len(digest(tmp_path / "a")) == 3 + 75 + 1  # sketches, coloured versions, Metadata.csv
    result = runner.invoke(cli, ["data", "icons", str(tmp_path / "c"), "--size", "32", "--characters", "3",
                                 "--seed", "1"])
    assert result.exit_code == 0 and digest(tmp_path / "c") != digest(tmp_path / "a")


def test_icons_bad_size_is_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["data", "icons", str(tmp_path / "x"), "--size", "1000"])
    assert result.exit_code == 2 and "32..512" in result.output
    assert not (tmp_path / "x" / "Metadata.csv").exists()


def test_check_reports_the_dataset_and_its_problems(tmp_path):
    runner = CliRunner()
    runner.invoke(cli, ["data", "icons", str(tmp_path / "d"), "--size", "32", "--characters", "2"])
    result = runner.invoke(cli, ["data", "check", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "rows: 50" in result.output and "characters: 2" in result.output
    assert "attribute hair: 5 values" in result.output and "problems: none" in result.output

    (tmp_path / "d" / "sketches" / "char-01.png").unlink()
    result = runner.invoke(cli, ["data", "check", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "input image 'sketches/char-01.png' not found" in result.output
    assert "25 problem(s) found" in result.output
    result = runner.invoke(cli, ["data", "check", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output
