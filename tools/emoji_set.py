"""What the skin-tone set builders share (make_fluent_emoji.py, make_openmoji.py).

Both write the Twemoji benchmark's format: OUT_DIR/Metadata.csv (input,output,skin,split; by
name, then skin in SKINS order), images/NAME--sketch.png and images/NAME--SKIN.png, LICENSE.txt.
Both split by the same hash, write all or nothing, print the same summary and take the same
command line. Each builder chooses its characters and draws its sketches and colour images.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

SKINS = ("default", "light", "medium-light", "medium", "medium-dark", "dark")


def fail(message: str) -> None:
    sys.exit(f"{Path(sys.argv[0]).stem}: {message}")


def split_of(name: str) -> str:
    """`test` for about a fifth of the characters, whole (sha256 of the name % 5 == 0)."""
    return "test" if int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % 5 == 0 else "train"


def write_set(out: Path, sketches: Sequence[tuple[str, object]], colour: Callable[[str, str], object],
              license_text: str) -> list[dict]:
    """Write the set into a temporary sibling of `out` and move it into place, so a failure leaves
    nothing half-written. `sketches`: (name, PIL sketch) by name; `colour(name, skin)`: its PIL image.
    Returns the Metadata rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        rows = []
        for name, sketch in sketches:
            sketch_path = f"images/{name}--sketch.png"
            sketch.save(tmp / sketch_path, format="PNG")
            for skin in SKINS:
                colour_path = f"images/{name}--{skin}.png"
                colour(name, skin).save(tmp / colour_path, format="PNG")
                rows.append({"input": sketch_path, "output": colour_path, "skin": skin, "split": split_of(name)})
        (tmp / "LICENSE.txt").write_text(license_text, encoding="utf-8")
        with open(tmp / "Metadata.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["input", "output", "skin", "split"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        if out.exists():
            out.rmdir()  # checked empty by command_line(); fails loudly if something appeared meanwhile
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(out, 0o755)
    return rows


def report(source: str, size: int, out: Path, excluded: dict[str, list[str]], rows: list[dict],
           started: float) -> None:
    """What was built and what was left out, and why."""
    print(f"{source}, {size} px -> {out}")
    for reason, names in excluded.items():
        if names:
            listed = "" if reason == "hand or body part" else ": " + ", ".join(names)
            print(f"excluded, {reason} ({len(names)}){listed}")
    for split in ("train", "test"):
        r = [row for row in rows if row["split"] == split]
        print(f"{split}: {len({row['input'] for row in r})} characters, {len(r)} pairs")
    print(f"total: {len({row['input'] for row in rows})} characters, {len(rows)} pairs, "
          f"{time.monotonic() - started:.1f} s")


def command_line(description: str, package_help: str, argv: list[str] | None = None,
                 more: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """OUT_DIR --package DIR [--size N] (and what `more` adds), checked: OUT_DIR absent or empty,
    cairosvg and Pillow importable."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to create (must not exist or be empty)")
    parser.add_argument("--package", type=Path, required=True, metavar="DIR", help=package_help)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    if more:
        more(parser)
    args = parser.parse_args(argv)
    if not 16 <= args.size <= 2048:
        parser.error("--size must be between 16 and 2048")
    if (out := args.out_dir).exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out} exists and is not an empty folder; remove it or choose another OUT_DIR")
    try:
        import cairosvg  # noqa: F401
        import PIL  # noqa: F401
    except (ImportError, OSError) as err:
        fail(f"cannot import cairosvg/pillow ({err}); pip install cairosvg pillow, and on Debian "
             "apt-get install libcairo2 for the cairo library")
    return args
