"""Plugins: third-party modules that register components when imported.

Two ways in, both explicit (nothing is imported from a path a file names):
- an installed distribution declares `[project.entry-points."colorgan.plugins"] name = "pkg.module"`;
  all of them are imported once, lazily, on the first registry lookup;
- a recipe lists `plugins: [pkg.module, ...]`; those are imported when the recipe is built.

A plugin that fails to import must not take the built-ins down with it: the failure is kept
(`broken_plugins()`), reported by `colorgan components` and named in unknown-component errors.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from colorgan.errors import RegistryError
from colorgan.registry.core import registering_as

GROUP = "colorgan.plugins"


@dataclass(frozen=True)
class BrokenPlugin:
    name: str
    distribution: str
    module: str
    cause: str

    def __str__(self) -> str:
        return (
            f"plugin {self.name!r} (distribution {self.distribution}, module {self.module}) "
            f"failed to import: {self.cause}"
        )


_broken: list[BrokenPlugin] = []
_imported_recipe_plugins: set[str] = set()


def broken_plugins() -> list[BrokenPlugin]:
    return list(_broken)


def load_entry_point_plugins() -> None:
    """Import every module declared in the `colorgan.plugins` entry-point group."""
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        try:
            with registering_as(f"plugin {dist} ({ep.value})"):
                ep.load()
        except Exception as err:  # a plugin's bug must not hide the built-ins
            broken = BrokenPlugin(ep.name, dist, ep.value, f"{type(err).__name__}: {err}")
            _broken.append(broken)
            warnings.warn(str(broken), RuntimeWarning, stacklevel=2)


def load_recipe_plugins(modules: list[str]) -> None:
    """Import the modules a recipe lists under `plugins:`; a failure is a recipe error."""
    for module in modules:
        if module in _imported_recipe_plugins:
            continue
        try:
            with registering_as(f"recipe plugin ({module})"):
                importlib.import_module(module)
        except Exception as err:
            raise RegistryError(
                f"plugins: recipe plugin {module!r} failed to import: {type(err).__name__}: {err}"
            ) from None
        _imported_recipe_plugins.add(module)
