"""The sample sheet written during training: fixed sketches x fixed conditions, one PNG per step.

The same sketches and conditions at every step, so the sheets over training show how the model
learns (`colorgan report` lays them side by side).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.utils import make_grid

from colorgan.data.images import to_pil
from colorgan.data.schema import ConditionSchema


@dataclass
class SampleSet:
    sketches: torch.Tensor          # (S, C, H, W): one per character, repeated for each condition
    conditions: list[dict[str, str]]
    rows: int
    cols: int


def pick_samples(dataset, schema: ConditionSchema, characters: int = 4, conditions: int = 5) -> SampleSet:
    """Up to `characters` distinct sketches, each with the same `conditions` value combinations.

    Combinations walk the values diagonally (value i of every attribute, shifted per attribute) so
    every value of every attribute shows up in a few columns.
    """
    first_row: dict[str, int] = {}  # sketch path (the character) -> its first row
    for i, (sketch_path, _) in enumerate(dataset.pairs):
        first_row.setdefault(sketch_path, i)
        if len(first_row) == characters:
            break
    combos = []
    for j in range(conditions):
        combos.append({a: vals[(j + k) % len(vals)] for k, (a, vals) in enumerate(schema.attributes)})
    sketches, conds = [], []
    for i in first_row.values():
        for combo in combos:
            sketches.append(dataset[i]["sketch"])
            conds.append(combo)
    return SampleSet(torch.stack(sketches), conds, rows=len(first_row), cols=len(combos))


@torch.no_grad()
def render(generator, samples: SampleSet, device) -> Image.Image:
    """Sheet: each row a character, first column its sketch, then one column per condition."""
    was_training = generator.training
    generator.eval()
    encoded = generator.encode(samples.conditions).to(device)
    images, _ = generator(samples.sketches.to(device), encoded)
    generator.train(was_training)
    images = images[:, :3].float()
    sketches = samples.sketches[:, :1].expand(-1, 3, -1, -1).float().to(device)
    tiles = []
    for r in range(samples.rows):
        tiles.append(sketches[r * samples.cols])
        tiles.extend(images[r * samples.cols:(r + 1) * samples.cols])
    # Laid out on the device; only the finished sheet, as bytes, comes to the host.
    return to_pil(make_grid(torch.stack(tiles), nrow=samples.cols + 1, padding=2, pad_value=1.0))
