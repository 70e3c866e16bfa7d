"""The CLI's foundation commands through Click's runner: version, components, recipe check."""

from click.testing import CliRunner

from colorgan import __version__
from colorgan.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_components_table_lists_every_kind():
    result = run("components")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["kind", "name", "origin", "summary"]
    kinds = {line.split()[0] for line in lines[1:]}
    assert kinds == {"conditions", "generators", "discriminators", "losses", "objectives"}
    unet = next(line for line in lines if line.split()[:2] == ["generators", "unet"])
    assert "built-in" in unet and len(unet.split("built-in", 1)[1].strip()) > 10


def test_components_of_one_kind_and_a_bad_kind():
    result = run("components", "losses")
    assert result.exit_code == 0
    assert {line.split()[1] for line in result.output.splitlines()[1:]} >= {"vanilla", "lsgan", "hinge"}
    assert {line.split()[0] for line in result.output.splitlines()[1:]} == {"losses"}
    result = run("components", "generatorz")
    assert result.exit_code == 2
    assert "did you mean 'generators'" in result.output


def test_recipe_check_prints_resolved_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: check\ntrain: {epochs: 2}\n")
    result = run("recipe", "check", str(path), "-o", "train.batch_size=3")
    assert result.exit_code == 0, result.output
    assert "name: check" in result.output and "batch_size: 3" in result.output


def test_recipe_check_bad_recipe_is_one_line_exit_2(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train: {epochs: ten}\n")
    result = run("recipe", "check", str(path))
    assert result.exit_code == 2
    assert "train.epochs: expected an integer or null, got 'ten'" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
