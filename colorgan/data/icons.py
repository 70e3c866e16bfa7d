"""The built-in dataset: head-and-shoulders character icons, drawn with Pillow (`icon_art`).

The seed project's images cannot be shipped, so they are drawn: each character is one colourless
line-art sketch and 25 colourings (5 hair x 5 shirt CSS colours), flat fills with a darker shade
on the side away from the light, under the sketch's own outlines. The same seed gives the same
bytes (Pillow writes PNGs without timestamps).
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from colorgan.data.icon_art import (  # noqa: F401  (re-exported: the icon set's public facts)
    HAIR_COLOURS, MAX_CHARACTERS, MAX_SIZE, MIN_SIZE, SHIRT_COLOURS, make_characters, render,
)
from colorgan.errors import DataError, os_error_line, shown
from colorgan.outputs import made_folders

if TYPE_CHECKING:
    from colorgan.recipe import Icons


HEADER = ("input", "output", "hair", "shirt")
_CONTENTS = {"sketches", "colored", "Metadata.csv"}  # what a drawn set holds, and nothing else


def draw_icons(out: Path, size: int = 64, characters: int = 10, seed: int = 0) -> Path:
    """Write sketches/, colored/ and Metadata.csv (input, output, hair, shirt) into `out`, all or nothing.

    `out` must be new, empty, or an icon set drawn before (drawn again): a folder holding anything
    else is a user's and is refused untouched. A failure (a full disk) names the path and leaves
    `out` as it was.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"icons: size must be {MIN_SIZE}..{MAX_SIZE} pixels, got {size}")
    make_characters(characters, seed)  # a bad count is refused before any folder is made
    out = Path(out)
    _refuse_foreign(out)
    try:
        with made_folders(out.parent):
            _draw_beside(out, size, characters, seed)
    except OSError as err:
        raise DataError(f"{os_error_line(err, out)}; the icon set was not written") from None
    return out


def _refuse_foreign(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"{shown(out)}: exists and is not a folder")
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names and not (names <= _CONTENTS and _header(out / "Metadata.csv") == HEADER):
        raise DataError(f"{shown(out)}: folder is not empty and is not an icon set colorgan drew; "
                        "draw into a new or empty folder (nothing was written)")


def _header(csv_path: Path) -> tuple[str, ...] | None:
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            return tuple(next(csv.reader(f), ()))
    except (OSError, UnicodeDecodeError):
        return None


def _draw_beside(out: Path, size: int, characters: int, seed: int) -> None:
    """Draw into a hidden sibling folder and rename it to `out` (an earlier set there is swapped out
    and removed): a full disk, a kill or a second process drawing at once never leaves half a set."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    old = out.with_name(f"{tmp.name}-old")
    try:
        _write(tmp, make_characters(characters, seed), size)
        tmp.chmod(0o755)  # mkdtemp makes it private; a dataset is an ordinary folder
        if out.is_dir() and any(out.iterdir()):
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if old.exists():
                os.replace(old, out)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _write(folder: Path, cast, size: int) -> None:
    (folder / "sketches").mkdir()
    (folder / "colored").mkdir()
    rows = []
    for i, who in enumerate(cast):
        sketch, colored = render(who, size)
        name = f"char-{i:02d}"
        sketch.save(folder / "sketches" / f"{name}.png")
        for (hair, shirt), img in colored.items():
            output = f"colored/{name}-{hair}-{shirt}.png"
            img.save(folder / output)
            rows.append((f"sketches/{name}.png", output, hair, shirt))
    with open(folder / "Metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


def cache_dir() -> Path:
    return Path(os.environ.get("COLORGAN_CACHE") or "~/.cache/colorgan").expanduser()


def builtin_path(icons: Icons, size: int) -> Path:
    """The drawn icon set for `icons` at `size`, drawn into the cache on first use.

    Drawn beside it and renamed into place, so an interrupted draw is never reused and two
    processes drawing at once both end up with one complete folder.
    """
    final = cache_dir() / f"icons-s{size}-c{icons.characters}-seed{icons.seed}"
    if (final / "Metadata.csv").is_file():
        return final
    if final.exists():  # not ours to trust: something other than a finished draw
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        _draw_beside(final, size, icons.characters, icons.seed)
    except OSError:
        if not (final / "Metadata.csv").is_file():  # not another process's draw that got there first
            raise
    return final
