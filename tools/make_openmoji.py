#!/usr/bin/env python3
"""Build a third skin-tone set in the Twemoji benchmark's format, from OpenMoji, with real line art.

    tools/make_openmoji.sh OUT_DIR [SIZE]          # fetches the package, then runs this file:
    make_openmoji.py OUT_DIR --package DIR [--size 64]

Why: a third art style to check what was tuned on Twemoji and Fluent, and the only one whose
sketches are the artists' own line art ("black line art -> colour"), not outlines drawn from colour
shapes. Same rules and format as ../shared/datasets/make_twemoji.py and make_fluent_emoji.py (a
development tool). DIR is the unpacked npm package (OpenMoji, CC BY-SA 4.0; holds color/svg,
black/svg, data/openmoji.json): `npm pack openmoji@17.0.0 && tar -xzf openmoji-17.0.0.tgz`.

Which emoji: people-body emoji minus the Unicode hand-*, hands and body-parts subgroups (as
make_fluent_emoji.py) with all six variants: neutral (yellow, `default`) and the five Fitzpatrick
modifiers 1F3FB..1F3FF. Multi-person emoji: only sequences with at most one distinct modifier,
i.e. one tone for everyone (`kiss: light skin tone`); mixed-tone combinations are ignored, as in
the other tools. Kept only if the six black SVGs render to identical sketch pixels, so one sketch
serves all six and cannot leak the tone (in 17.0.0 they are byte-identical for every such emoji).
Name: the neutral annotation, lowercased, other runs of characters -> `-` (`man: red hair` ->
`man-red-hair`); a clash stops the build. A sketch within DUP_LEVELS grey levels in every pixel of
a kept one is a duplicate (make_fluent_emoji.py's rule; `man-artist` = `artist`, `woman-red-hair` =
`woman`, `man-blond-hair` ~ `man` within 4 levels, `woman-bald` ~ `man-bald` within 46): the
shortest name is kept, so no test sketch equals a training sketch.

Sketch: black/svg/HEX.svg (2-unit strokes, 1.8 px at 64 px) rendered on white, grayscale (L).
Colour: color/svg/HEX.svg rendered on white, RGB. Neither SVG is changed. At 64 px: 245 characters
(174 train, 71 test), 1470 pairs; 49 hand/body-part emoji and 36 duplicate sketches dropped, none
for tone-dependent sketches. Combined hash (`find . -type f | LC_ALL=C sort | xargs sha256sum |
sha256sum` in OUT_DIR): 913debf0eaef15a0a88c26a1cfdea23f69bd7a930f030c8adc0e0a374d254a07
with cairo 1.16.0, cairosvg 2.9.1 and pillow 12.3.0.

Output: OUT_DIR/Metadata.csv (input,output,skin,split; by name, then skin as in SKINS), images/*.png,
LICENSE.txt (CC BY-SA 4.0). split: `test` when sha256(name) % 5 == 0, else `train` (whole emoji
held out). The same package, size and library versions give byte-identical files.
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

from emoji_set import SKINS, command_line, fail, report, write_set

PACKAGE = "openmoji"
TESTED_VERSION = "17.0.0"
MODIFIERS = dict(zip(("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"), SKINS[1:]))  # Fitzpatrick 1-2..6
HANDS_AND_BODY_PARTS = frozenset({"hand-fingers-open", "hand-fingers-partial", "hand-single-finger",
                                  "hand-fingers-closed", "hands", "hand-prop", "body-parts"})
DUP_LEVELS = 64  # sketches whose pixels all lie within this many grey levels count as the same

LICENSE = """\
OpenMoji graphics
All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0
https://openmoji.org/ -- https://creativecommons.org/licenses/by-sa/4.0/
Taken from the npm package {package}@{version} (color/svg and black/svg).

Changes: the colour SVGs were rendered to {size}x{size} PNG on a white background (*--SKIN.png);
the sketches (*--sketch.png) are OpenMoji's black line-art SVGs rendered the same way, in grayscale.
This folder was built by colorgan's tools/make_openmoji.py. The rendered images are adaptations of
OpenMoji and are licensed under the same CC BY-SA 4.0 licence: keep this file with any copy, credit
"OpenMoji, CC BY-SA 4.0" wherever you publish images made from them, and share adaptations of the
images under CC BY-SA 4.0.
"""


def load_package(pkg: Path) -> tuple[Path, list[dict], str]:
    """Package folder, openmoji.json entries, version."""
    if not (pkg / "data" / "openmoji.json").is_file() and (pkg / "package" / "data").is_dir():
        pkg = pkg / "package"
    needed = [pkg / "package.json", pkg / "data" / "openmoji.json", pkg / "color" / "svg", pkg / "black" / "svg"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        fail(f"{pkg} is not an unpacked {PACKAGE} package (missing {', '.join(missing)})")
    meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    if meta.get("name") != PACKAGE:
        fail(f"{pkg} holds {meta.get('name')!r}, not {PACKAGE}")
    version = meta.get("version", "?")
    if version != TESTED_VERSION:
        print(f"warning: {PACKAGE}@{version}; the docstring's counts are for {TESTED_VERSION}", file=sys.stderr)
    return pkg, json.loads((pkg / "data" / "openmoji.json").read_text(encoding="utf-8")), version


def variant_groups(emoji: list[dict]) -> dict[str, dict[str, dict]]:
    """Base code-point sequence -> {skin: openmoji.json entry}, for sequences with at most one tone."""
    groups: dict[str, dict[str, dict]] = {}
    for entry in emoji:
        points = [p for p in entry["hexcode"].upper().split("-") if p != "FE0F"]  # VS16 varies
        tones = {MODIFIERS[p] for p in points if p in MODIFIERS}
        if len(tones) > 1:
            continue  # mixed-tone couples/handshakes: no single `skin` value
        base = "-".join(p for p in points if p not in MODIFIERS)
        groups.setdefault(base, {})[tones.pop() if tones else "default"] = entry
    return groups


def slug(annotation: str) -> str:
    plain = unicodedata.normalize("NFKD", annotation).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def render(svg_file: Path, size: int, mode: str):
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg_file.read_bytes(), output_width=size, output_height=size,
                           background_color="white")
    with Image.open(io.BytesIO(png)) as img:
        return img.convert(mode)


def same(a, b, levels: int = 0) -> bool:
    from PIL import ImageChops
    return ImageChops.difference(a, b).getextrema()[1] <= levels


def select(pkg: Path, emoji: list[dict], size: int) -> tuple[list[tuple[str, dict, object]], dict]:
    """Kept emoji as (name, {skin: hexcode}, sketch) sorted by name, and the excluded ones by reason."""
    excluded: dict[str, list[str]] = {"hand or body part": [], "missing variants": [],
                                      "tones change the sketch": [], "same sketch as a kept emoji": []}
    candidates = {}
    for variants in variant_groups(emoji).values():
        neutral = variants.get("default")
        if len(variants) < 2 or neutral is None or neutral["group"] != "people-body":
            continue
        name = slug(neutral["annotation"])
        hexes = {skin: e["hexcode"] for skin, e in variants.items()}
        if neutral["subgroups"] in HANDS_AND_BODY_PARTS:
            excluded["hand or body part"].append(name)
            continue
        if set(variants) != set(SKINS) or not all(
                (pkg / d / "svg" / f"{h}.svg").is_file() for h in hexes.values() for d in ("color", "black")):
            excluded["missing variants"].append(name)
            continue
        black = {skin: pkg / "black" / "svg" / f"{h}.svg" for skin, h in hexes.items()}
        sketch = render(black["default"], size, "L")
        # byte-identical SVGs render identically, so only differing files need rendering
        if not all(black[s].read_bytes() == black["default"].read_bytes()
                   or same(render(black[s], size, "L"), sketch) for s in SKINS[1:]):
            excluded["tones change the sketch"].append(name)
            continue
        if name in candidates:
            fail(f"two emoji are both named {name!r}")
        candidates[name] = (hexes, sketch)
    kept: list[tuple[str, dict, object]] = []
    for name in sorted(candidates, key=lambda n: (len(n), n)):
        hexes, sketch = candidates[name]
        twin = next((other for other, _, img in kept if same(sketch, img, DUP_LEVELS)), None)
        if twin is None:
            kept.append((name, hexes, sketch))
        else:
            excluded["same sketch as a kept emoji"].append(f"{name} (~ {twin})")
    return sorted(kept, key=lambda k: k[0]), {k: sorted(v) for k, v in excluded.items()}


def build(out: Path, pkg: Path, size: int) -> None:
    started = time.monotonic()
    pkg, emoji, version = load_package(pkg)
    kept, excluded = select(pkg, emoji, size)
    if not kept:
        fail("no emoji passed the selection; is this the right package?")
    colours = {name: hexes for name, hexes, _ in kept}
    rows = write_set(out, [(name, sketch) for name, _, sketch in kept],
                     lambda name, skin: render(pkg / "color" / "svg" / f"{colours[name][skin]}.svg", size, "RGB"),
                     LICENSE.format(package=PACKAGE, version=version, size=size))
    report(f"{PACKAGE}@{version}", size, out, excluded, rows, started)


def main(argv: list[str] | None = None) -> None:
    args = command_line(__doc__.split("\n\n")[0],
                        f"unpacked {PACKAGE} package (the folder holding color/, black/ and data/)", argv)
    build(args.out_dir, args.package, args.size)


if __name__ == "__main__":
    main()
