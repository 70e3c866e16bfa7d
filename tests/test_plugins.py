"""Plugins: a real distribution with an entry point, a broken one, and a recipe's plugins list."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from colorgan import recipe as recipes
from colorgan.errors import RegistryError
from colorgan.registry import GENERATORS
from colorgan.registry import plugins

PLUGINS = Path(__file__).parent / "plugins"


def _colorgan(*args, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, "-m", "colorgan", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_installed_plugin_is_listed_with_its_distribution():
    result = _colorgan("components", "generators", pythonpath=[PLUGINS / "demo"])
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "demo-gen" in l)
    assert "plugin colorgan-demo-plugin (colorgan_demo_plugin)" in line
    assert "A one-layer generator" in line
    assert any(l.split()[1] == "unet" for l in result.stdout.splitlines()[1:])


def test_broken_plugin_is_named_and_builtins_keep_working():
    result = _colorgan("components", pythonpath=[PLUGINS / "broken"])
    assert result.returncode == 0
    assert "plugin 'broken' (distribution colorgan-broken-plugin, module colorgan_broken_plugin)" in result.stderr
    assert "needs a package that is not installed" in result.stderr
    assert " unet " in result.stdout


def test_entry_point_plugin_builds_from_a_recipe(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS / "demo"))
    plugins.load_entry_point_plugins()
    assert GENERATORS.entry("demo-gen").origin == "plugin colorgan-demo-plugin (colorgan_demo_plugin)"
    recipe = recipes.from_dict({"generator": {"type": "demo-gen", "width": 2}})
    recipes.validate(recipe)
    built = GENERATORS.build(recipe.generator, in_channels=1, out_channels=3, cond_dim=4)
    assert built.width == 2


def test_recipe_plugins_list_imports_the_module(tmp_path, monkeypatch):
    pkg = tmp_path / "my_recipe_plugin.py"
    pkg.write_text(
        "from colorgan.registry import LOSSES\n"
        "@LOSSES.register('recipe-loss')\n"
        "class RecipeLoss:\n"
        "    '''Registered by a recipe's plugins list.'''\n"
        "    def __init__(self, margin=1.0):\n"
        "        self.margin = margin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = recipes.from_dict({"plugins": ["my_recipe_plugin"], "loss": {"type": "recipe-loss", "margin": 2.0}})
    recipes.validate(recipe)
    assert GENERATORS  # registries still usable
    from colorgan.registry import LOSSES

    assert LOSSES.entry("recipe-loss").origin == "recipe plugin (my_recipe_plugin)"


def test_recipe_plugin_that_fails_is_a_clear_error():
    recipe = recipes.from_dict({"plugins": ["no_such_colorgan_plugin_module"]})
    with pytest.raises(RegistryError, match="recipe plugin 'no_such_colorgan_plugin_module' failed to import"):
        recipes.validate(recipe)
