"""Example sketches for the page: the model's own dataset's sketches when that dataset is on this
machine, the built-in icons otherwise, so every model has something to try at once.

Only the sketches' paths are kept (at most MAX_EXAMPLES); an example is decoded when asked for,
by the same `open_image` as training data. Requests name examples by number, never by path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from colorgan.data import BUILTIN_ICONS
from colorgan.data.icons import MAX_SIZE, MIN_SIZE, builtin_path
from colorgan.data.metadata import METADATA, read_metadata, resolve_image
from colorgan.errors import ColorganError, DataError
from colorgan.recipe import DataConfig, Icons

MAX_EXAMPLES = 24


@dataclass(frozen=True)
class Examples:
    source: str               # "dataset FOLDER" or "built-in icons"
    paths: tuple[Path, ...]

    def names(self) -> list[str]:
        return [p.stem for p in self.paths]

    def path(self, example: str) -> Path:
        """The file of example number `example` (a string, as forms and URLs carry it)."""
        if not (example.isdecimal() and int(example) < len(self.paths)):
            raise ColorganError(f"unknown example {example!r}; examples are 0..{len(self.paths) - 1}")
        return self.paths[int(example)]


def _sketches(folder: Path) -> tuple[Path, ...]:
    frame, _ = read_metadata(folder)
    found = (resolve_image(folder, p) for p in frame["input"].drop_duplicates())
    return tuple(p for p in found if p is not None)[:MAX_EXAMPLES]


def find_examples(data: DataConfig) -> Examples:
    """The sketches of `data`'s dataset if it is here and readable, else the built-in icons."""
    folder = Path(data.path).expanduser()
    if data.path != BUILTIN_ICONS and (folder / METADATA).is_file():
        try:
            return Examples(f"dataset {folder}", _sketches(folder))
        except DataError as err:
            print(f"colorgan serve: examples from the built-in icons instead ({err})", file=sys.stderr)
    icons = data.icons if data.path == BUILTIN_ICONS else Icons()
    size = min(max(data.image_size, MIN_SIZE), MAX_SIZE)
    return Examples("built-in icons", _sketches(builtin_path(icons, size)))
