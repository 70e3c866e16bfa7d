"""Issue 11's skin accuracy judged two ways, on a Twemoji-format set's held-out characters (a
diagnostic for the README's question of what the misses are; `colorgan evaluate` is the metric).

    python tools/skin_judges.py MODEL DIR

- median: `colorgan evaluate`'s judge. The region's median Lab colour is compared with each tone's
  reference colour for this character (the median of that tone's ground truth over the region).
- per-pixel: the tone whose ground-truth image is nearest over the same region, pixel by pixel
  (mean CIEDE2000).

Where the region mixes the skin with hair that some tones share (woman-elf), the median lands on
the hair and cannot tell those tones apart; pixel by pixel, the skin still can. Every image is
coloured alone by `Colorizer` (fill and test_flip as the model file says), so the median figure
matches `evaluate`'s to the image.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import torch

from colorgan.colour import ciede2000, srgb_to_lab
from colorgan.data.images import open_image, to_rgb
from colorgan.inference import Colorizer
from colorgan.metrics import attribute_regions, nearest_value, region_color, value_colors

TONES = ["default", "light", "medium-light", "medium", "medium-dark", "dark"]


def rgb(path: Path) -> np.ndarray:
    """A target as colorgan reads it (transparency on white paper)."""
    return np.asarray(to_rgb(open_image(path)))


def lab(pixels: np.ndarray) -> torch.Tensor:
    return srgb_to_lab(torch.tensor(pixels / 255.0, dtype=torch.float32))


def judge(truths: dict[str, np.ndarray], drawn: dict[str, np.ndarray]) -> dict[str, int] | None:
    """One character: `truths` and `drawn` map each tone to an H x W x 3 uint8 image. Returns how
    many of the drawn images each judge finds in their asked tone, or None when no pixel changes
    with the tone (nothing to judge)."""
    region = attribute_regions({(t,): image for t, image in truths.items()}, ["skin"])["skin"]
    if not region.any():
        return None
    mask = region.numpy()
    references = value_colors({(t,): image for t, image in truths.items()}, ["skin"], "skin", {"skin": region},
                              list(truths))
    truth_lab = {t: lab(image[mask]) for t, image in truths.items()}
    hits = {"median": 0, "per-pixel": 0}
    for tone, image in drawn.items():
        by_pixel = {t: float(ciede2000(lab(image[mask]), truth_lab[t]).mean()) for t in truths}
        hits["median"] += nearest_value(region_color(image, region), references) == tone
        hits["per-pixel"] += min(by_pixel, key=by_pixel.get) == tone
    return hits


def main(model: str, root: Path) -> None:
    rows = [r for r in csv.DictReader(open(root / "Metadata.csv")) if r["split"] == "test"]
    colorizer = Colorizer.load(model, device="cpu")
    hits = {"median": 0, "per-pixel": 0}
    judged = 0
    for sketch_path in sorted({r["input"] for r in rows}):
        name = Path(sketch_path).name.removesuffix("--sketch.png")
        sketch = open_image(root / sketch_path)
        truths = {t: rgb(root / "images" / f"{name}--{t}.png") for t in TONES}
        drawn = {t: np.asarray(colorizer.colorize(sketch, {"skin": t}).convert("RGB")) for t in TONES}
        found = judge(truths, drawn)
        if found is not None:
            hits = {k: hits[k] + found[k] for k in hits}
            judged += len(drawn)
    print(f"{judged} images: skin accuracy, median judge {hits['median'] / judged:.3f}, "
          f"per-pixel judge {hits['per-pixel'] / judged:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
