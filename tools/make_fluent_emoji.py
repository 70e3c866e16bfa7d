#!/usr/bin/env python3
"""Build a second skin-tone set in the Twemoji benchmark's format from another emoji art style.

    tools/make_fluent_emoji.sh OUT_DIR [SIZE]          # fetches the package, then runs this file:
    make_fluent_emoji.py OUT_DIR --package DIR [--size 64] [--tones-match geometry|sketch]

Why: a second art style to check that what was tuned on Twemoji holds elsewhere (README,
Benchmarks). Adapted from ../shared/datasets/make_twemoji.py (same rules, same output format; a
development tool, not part of the package). DIR is the unpacked npm package
`@iconify-json/fluent-emoji-flat` (Microsoft Fluent Emoji, flat style, MIT; the folder that holds
icons.json, chars.json and metadata.json; `npm pack` unpacks it as `package/`):

    npm pack @iconify-json/fluent-emoji-flat@1.2.6 && tar -xzf iconify-json-fluent-emoji-flat-1.2.6.tgz

Differences from make_twemoji.py: element ids (random per icon in Iconify sets, e.g. clip paths,
filters, <use> targets) are renumbered in order before shapes are compared, and filter-primitive
result/in/in2 names are ignored there; `stop-color`,
`stop-opacity` and `style` are treated as colour, not geometry; in sketches gradient/url fills
become white like any fill, and `filter` (drop shadows) and `mask` references are removed so the
sketch stays pure white fills + black strokes. Colour images are the plain cairosvg render.
Near-duplicate sketches (Fluent's hair variants differ in a path's third decimal) are found on the
rendered sketches. At 64 px: 154 characters (116 train, 38 test), 924 pairs; the files' combined
hash (`find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum` in OUT_DIR) is
a17b7d6ea73e8c162a3471303070c0ed7690fc0e1398693ff915d714151109b0 with cairo 1.16.0.

Which emoji: person emoji (Unicode "People & Body" minus the hand and body-part emoji) whose six
variants (neutral yellow + the five Fitzpatrick tones) all exist and have identical shapes: the
same elements in the same order with the same geometry, only `fill` colours differ. Then one sketch
serves all six and cannot leak the tone. Emoji whose shapes are identical to another kept emoji's
(e.g. `woman-red-hair` = `woman`) are dropped, so no test sketch equals a training sketch.

Sketch ("method A"): every fill white, every shape stroked black (1.1 px at 64 px, scaling with
--size), painter's order kept so nearer shapes hide the lines behind them; semi-transparent shapes
(steam, goggle lenses) become outlines only. Colour images are rendered on white.

Output: OUT_DIR/Metadata.csv (input,output,skin,split), OUT_DIR/images/*.png, OUT_DIR/LICENSE.txt.
split is `test` when sha256(emoji name) % 5 == 0, else `train` (whole emoji held out, ~20%).
The same package, size and library versions give byte-identical files.
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from emoji_set import SKINS, command_line, fail, report, write_set

PACKAGE = "@iconify-json/fluent-emoji-flat"
TESTED_VERSION = "1.2.6"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MODIFIERS = {"1f3fb": "light", "1f3fc": "medium-light", "1f3fd": "medium", "1f3fe": "medium-dark",
             "1f3ff": "dark"}
LINE_PX_AT_64 = 1.1
TONE_SKETCH_LEVELS = 32  # --tones-match sketch: most a pixel of a tone's sketch may differ
DUP_LEVELS = 64  # sketches whose pixels all lie within this many grey levels count as the same
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)
SHAPES = {"path", "circle", "ellipse", "rect", "polygon", "polyline", "line"}
# Unicode emoji subgroups hand-fingers-open/-partial, hand-single-finger, hand-fingers-closed, hands,
# hand-prop and body-parts: "People & Body" emoji that are not persons.
HANDS_AND_BODY_PARTS = frozenset("""
1f44b 1f91a 1f590 270b 1f596 1faf1 1faf2 1faf3 1faf4 1faf7 1faf8
1f44c 1f90c 1f90f 270c 1f91e 1faf0 1f91f 1f918 1f919
1f448 1f449 1f446 1f595 1f447 261d 1faf5
1f44d 1f44e 270a 1f44a 1f91b 1f91c
1f44f 1f64c 1faf6 1f450 1f932 1f91d 1f64f
270d 1f485 1f933
1f4aa 1f9be 1f9bf 1f9b5 1f9b6 1f442 1f9bb 1f443 1f9e0 1fac0 1fac1 1f9b7 1f9b4 1f440 1f441 1f445
1f444 1fae6
""".split())

LICENSE = """\
Fluent Emoji (flat style) graphics
Copyright (c) Microsoft Corporation.
Licensed under the MIT License: https://github.com/microsoft/fluentui-emoji/blob/main/LICENSE
Source: https://github.com/microsoft/fluentui-emoji, taken from the npm package
{package}@{version} (Iconify JSON format, https://icon-sets.iconify.design/fluent-emoji-flat/).

Changes: the SVGs were rendered to {size}x{size} PNG on a white background; the sketches
(*--sketch.png) are derived from them (fills made white, shapes outlined in black).
This folder was built by a script adapted from colorgan's make_twemoji.py.

MIT License

Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def load_package(pkg: Path) -> tuple[dict, dict, dict, str]:
    """icons, chars (code points -> name), categories (name -> category), version."""
    if not (pkg / "icons.json").is_file() and (pkg / "package" / "icons.json").is_file():
        pkg = pkg / "package"
    files = {name: pkg / f"{name}.json" for name in ("icons", "chars", "metadata", "package")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        fail(f"{pkg} is not an unpacked {PACKAGE} package (missing {', '.join(missing)})")
    data = {name: json.loads(p.read_text(encoding="utf-8")) for name, p in files.items()}
    if data["package"].get("name") != PACKAGE:
        fail(f"{pkg} holds {data['package'].get('name')!r}, not {PACKAGE}")
    version = data["package"].get("version", "?")
    if version != TESTED_VERSION:
        print(f"warning: {PACKAGE}@{version}; the README's counts are for {TESTED_VERSION}", file=sys.stderr)
    icons = data["icons"]
    categories = {n: c for c, names in data["metadata"].get("categories", {}).items() for n in names}
    return icons, data["chars"], categories, version


def variant_groups(chars: dict) -> dict[str, dict[str, str]]:
    """Base code-point sequence -> {skin: icon name}, for sequences with at most one skin tone."""
    groups: dict[str, dict[str, str]] = {}
    for seq, name in chars.items():
        points = [p for p in seq.lower().split("-") if p != "fe0f"]  # VS16 varies between variants
        tones = {MODIFIERS[p] for p in points if p in MODIFIERS}
        if len(tones) > 1:
            continue  # multi-tone couples/handshakes: no single `skin` value
        base = "-".join(p for p in points if p not in MODIFIERS)
        groups.setdefault(base, {})[tones.pop() if tones else "default"] = name
    return groups


def parse(body: str) -> ET.Element:
    return ET.fromstring(f'<svg xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}">{body}</svg>')


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def normalise_ids(body: str) -> str:
    """Renumber element ids (and their url(#id) / href="#id" references) in order of appearance."""
    ids = re.findall(r'\bid="([^"]+)"', body)
    for i, old in enumerate(dict.fromkeys(ids)):
        new = f"id{i}"
        body = re.sub(rf'\bid="{re.escape(old)}"', f'id="{new}"', body)
        body = body.replace(f"url(#{old})", f"url(#{new})")
        body = re.sub(rf'(href=)"#{re.escape(old)}"', rf'\1"#{new}"', body)
    return body


COLOUR_ATTRS = {"fill", "stop-color", "stop-opacity", "style"}
FILTER_REFS = {"result", "in", "in2"}


def geometry(body: str) -> tuple:
    """Everything but fill colours: element order, tags and attributes (fill only as none/paint)."""
    return tuple(
        (local(e.tag), tuple(sorted((k, v) for k, v in e.attrib.items() if k not in COLOUR_ATTRS
                                    # filter-primitive result names (effect1_dropShadow_4002_1670)
                                    # are export artefacts that differ between tone variants
                                    and not (local(e.tag).startswith("fe") and k in FILTER_REFS))),
         e.get("fill") == "none")
        for e in parse(normalise_ids(body)).iter()
    )


def sketch_body(body: str) -> str:
    """Method A: fills white (none where transparent), strokes from the root, painter's order kept."""
    root = parse(body)

    def walk(elem: ET.Element, fill: str, transparent: bool) -> None:
        own = elem.attrib.pop("fill", None)
        fill = own if own is not None else fill
        for key in ("opacity", "fill-opacity"):
            value = elem.attrib.pop(key, None)
            if value is not None and float(value) < 1:
                transparent = True
        for key in [k for k in elem.attrib if k.startswith("stroke") or k in ("filter", "mask", "style")]:
            del elem.attrib[key]
        if local(elem.tag) in SHAPES:
            elem.set("fill", "none" if fill == "none" or transparent else "#fff")
        for child in elem:
            walk(child, fill, transparent)

    for child in root:
        walk(child, "black", False)
    return "".join(ET.tostring(child, encoding="unicode") for child in root
                   if local(child.tag) != "filter")


def svg(icon: dict, body: str, width: float, height: float, extra: str = "") -> bytes:
    left, top = icon.get("left", 0), icon.get("top", 0)
    w, h = icon.get("width", width), icon.get("height", height)
    return (f'<svg xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}" viewBox="{left} {top} {w} {h}" '
            f'width="{w}" height="{h}"{extra}>{body}</svg>').encode()


def render(svg_bytes: bytes, size: int, mode: str):
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg_bytes, output_width=size, output_height=size,
                           background_color="white")
    with Image.open(io.BytesIO(png)) as img:
        return img.convert(mode)


def select(icons: dict, chars: dict, categories: dict, same_sketch=None) -> tuple[list[tuple[str, dict]], dict]:
    """Kept emoji as (name, {skin: icon name}) sorted by name, and the excluded ones by reason.

    same_sketch (only with --tones-match sketch): a function of the six icon names that says
    whether their sketches look the same; it then also admits variants whose SVGs differ only in
    rounding or in how paths were merged (see --tones-match)."""
    excluded: dict[str, list[str]] = {"hand or body part": [], "tones change shapes": [],
                                      "same shapes as a kept emoji": []}
    candidates = []
    for base, variants in variant_groups(chars).items():
        if len(variants) < 2:
            continue  # no skin tones at all
        name = variants.get("default", min(variants.values()))
        if categories.get(name) != "People & Body":
            continue
        if base.split("-")[0] in HANDS_AND_BODY_PARTS:
            excluded["hand or body part"].append(name)
        elif set(variants) != set(SKINS) or any(v not in icons for v in variants.values()):
            excluded.setdefault("missing variants", []).append(name)
        elif len({geometry(icons[v]["body"]) for v in variants.values()}) != 1 and not (
                same_sketch and same_sketch([variants[s] for s in SKINS])):
            excluded["tones change shapes"].append(name)
        else:
            candidates.append((name, variants))
    # emoji drawn with the same shapes (woman / woman-red-hair / woman-white-hair): keep the
    # shortest name, so a held-out sketch is never identical to a training one
    kept, seen = [], {}
    for name, variants in sorted(candidates, key=lambda c: (len(c[0]), c[0])):
        key = geometry(icons[name]["body"])
        if key in seen:
            excluded["same shapes as a kept emoji"].append(f"{name} (= {seen[key]})")
        else:
            seen[key] = name
            kept.append((name, variants))
    return sorted(kept), {k: sorted(v) for k, v in excluded.items()}


def render_sketch(icon: dict, width: float, height: float, size: int):
    line = icon["width"] * LINE_PX_AT_64 / 64
    attrs = f' stroke="#000" stroke-width="{line:.4f}" stroke-linejoin="round"'
    return render(svg(icon, sketch_body(icon["body"]), width, height, attrs), size, "L")


def dedup_sketches(kept: list, icons: dict, width: float, height: float, size: int,
                   excluded: dict) -> dict:
    """name -> sketch image, without sketches (nearly) identical to a kept one.

    Unlike Twemoji, Fluent's variants of one drawing (woman / woman-blonde-hair / woman-red-hair)
    can differ in the 3rd decimal of a path coordinate, so equal geometry misses them. A sketch
    is a duplicate when no pixel differs by more than DUP_LEVELS grey levels from a kept sketch
    (at 64 px the true duplicates differ by at most 51 levels; the closest distinct siblings,
    man-golfing / person-golfing, by 178 levels in 4 pixels). The shortest name is kept."""
    from PIL import ImageChops

    sketches: dict = {}
    for name, _ in sorted(kept, key=lambda c: (len(c[0]), c[0])):
        sketch = render_sketch(icons[name], width, height, size)
        twin = next((other for other, img in sketches.items()
                     if ImageChops.difference(sketch, img).getextrema()[1] <= DUP_LEVELS), None)
        if twin is None:
            sketches[name] = sketch
        else:
            excluded["same shapes as a kept emoji"].append(f"{name} (~ {twin}, same sketch)")
    excluded["same shapes as a kept emoji"].sort()
    return sketches


def build(out: Path, pkg: Path, size: int, tones_match: str = "geometry") -> None:
    started = time.monotonic()
    icons_json, chars, categories, version = load_package(pkg)
    width = icons_json.get("width", 16)
    height = icons_json.get("height", width)
    icons = {n: {**{"width": width, "height": height}, **i} for n, i in icons_json["icons"].items()}
    same_sketch = None
    if tones_match == "sketch":
        from PIL import ImageChops

        def same_sketch(names: list[str]) -> bool:
            sk = [render_sketch(icons[n], width, height, size) for n in names]
            return all(ImageChops.difference(sk[0], s).getextrema()[1] <= TONE_SKETCH_LEVELS for s in sk[1:])
    kept, excluded = select(icons, chars, categories, same_sketch)
    if not kept:
        fail("no emoji passed the selection; is this the right package?")

    sketches = dedup_sketches(kept, icons, width, height, size, excluded)
    variants_of = {name: variants for name, variants in kept if name in sketches}

    def colour(name: str, skin: str):
        v = icons[variants_of[name][skin]]
        return render(svg(v, v["body"], width, height), size, "RGB")

    rows = write_set(out, [(name, sketches[name]) for name in variants_of], colour,
                     LICENSE.format(package=PACKAGE, version=version, size=size))
    report(f"{PACKAGE}@{version}", size, out, excluded, rows, started)


def main(argv: list[str] | None = None) -> None:
    def tones_match(parser) -> None:
        parser.add_argument("--tones-match", choices=("geometry", "sketch"), default="geometry",
                            help="geometry (default, make_twemoji's rule): the six SVGs must have the same "
                                 "elements and attributes except colours; sketch: also keep an emoji whose "
                                 "six sketches differ by at most %d grey levels in every pixel (Fluent's "
                                 "tones often differ only in path rounding or merged same-colour paths); "
                                 "the neutral variant's sketch is used" % TONE_SKETCH_LEVELS)
    args = command_line(__doc__.split("\n\n")[0], f"unpacked {PACKAGE} package (the folder holding icons.json)",
                        argv, tones_match)
    build(args.out_dir, args.package, args.size, args.tones_match)


if __name__ == "__main__":
    main()
