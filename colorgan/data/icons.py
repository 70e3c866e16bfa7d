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
from colorgan.errors import DataError

if TYPE_CHECKING:
    from colorgan.recipe import Icons


def draw_icons(out: Path, size: int = 64, characters: int = 10, seed: int = 0) -> Path:
    """Write sketches/, colored/ and Metadata.csv (input, output, hair, shirt) into `out`."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"icons: size must be {MIN_SIZE}..{MAX_SIZE} pixels, got {size}")
    cast = make_characters(characters, seed)
    out = Path(out)
    (out / "sketches").mkdir(parents=True, exist_ok=True)
    (out / "colored").mkdir(exist_ok=True)
    rows = []
    for i, who in enumerate(cast):
        sketch, colored = render(who, size)
        name = f"char-{i:02d}"
        sketch.save(out / "sketches" / f"{name}.png")
        for (hair, shirt), img in colored.items():
            output = f"colored/{name}-{hair}-{shirt}.png"
            img.save(out / output)
            rows.append((f"sketches/{name}.png", output, hair, shirt))
    with open(out / "Metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("input", "output", "hair", "shirt"))
        writer.writerows(rows)
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("COLORGAN_CACHE") or "~/.cache/colorgan").expanduser()


def builtin_path(icons: Icons, size: int) -> Path:
    """The drawn icon set for `icons` at `size`, drawn into the cache on first use.

    Drawn into a temporary folder and renamed into place, so an interrupted draw is never reused
    and two processes drawing at once both end up with one complete folder.
    """
    final = cache_dir() / f"icons-s{size}-c{icons.characters}-seed{icons.seed}"
    if (final / "Metadata.csv").is_file():
        return final
    if final.exists():  # not ours to trust: something other than a finished draw
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        draw_icons(tmp, size=size, characters=icons.characters, seed=icons.seed)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        os.replace(tmp, final)
    except OSError:
        if not (final / "Metadata.csv").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
