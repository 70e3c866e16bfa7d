"""Region fill: one colour per closed region of the sketch, the median of what the network drew there.

Icon art is flat colour inside outlines: on the Twemoji set, a target whose pixels off the lines
are replaced by their 4-connected region's mean is 64.6 dB PSNR from the original (no visible
change). A network that paints pixel by pixel leaves mottled texture inside those regions on
characters it has not seen; giving each region one colour removes it. Line pixels keep the
network's own output (the target has no outlines: they take a neighbouring region's colour). It
suits art whose colour boundaries are drawn; the built-in icons' are not (their shading crosses
no line: filled that way they are only 20.4 dB from the original), so only real-icons fills, and
only where its training set shows closed outlines (`fill: auto`, decided in `colorgan.build.resolve_fill`).

A generator fills in eval mode only (sampling, evaluation, validation, the server, ONNX): the
training loss sees the raw output. Measured on the Twemoji held-out characters (18 epochs of
real-icons): training through the fill (a mean) gave 18.49 dB, training raw and filling
afterwards 18.92 (mean) and 19.07 (median); the per-pixel loss teaches more than one loss per
region.

Everything is tensor operations on the sketch's device, so every path fills the same way, ONNX
included: connected components by label equivalence (see `sketch_regions`), a fixed number of
rounds so the host never waits. A region that has not converged in those rounds is split in
parts, each filled on its own (never merged with another).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LINE_THRESHOLD = 0.0
"""A sketch pixel darker than this (in [-1, 1], mid-grey = 0) is a line, not part of a region."""

FILL_MODES = ("none", "regions", "auto")
"""`auto` is decided by training from its training set (`colorgan.build.resolve_fill`: `regions`
where the targets are within SUITED_FILL_DB of their own fill, else `none`) and saved resolved in
the run's recipe and model file; a generator whose `auto` was never decided refuses eval mode."""

SUITED_FILL_DB = 30.0
"""How close (PSNR) a training set's targets must be to their own region fill for `fill: regions`
to suit it (what `auto` chooses by; below it, an explicit `regions` warns) (on 256 training pairs): Twemoji's set 37.6 dB and Fluent's 38.4 (sketches drawn from the colour shapes: every
colour boundary is a line), OpenMoji's 16.4 (the artists' line art leaves hair against face, and
hair and bodies against the background, unclosed) and the built-in icons' 18.7 (shading crosses no line)."""


def propagation_rounds(height: int, width: int) -> int:
    """Rounds of label equivalence used for an H x W sketch: log2 of its side, plus 2.

    Label equivalence merges regions' labels along whole paths at once, so its rounds grow with
    the log of a region's extent: every sketch of the built-in icons and of the Twemoji set (64
    and 256 px) converged in at most 5 rounds, a serpentine corridor filling a 256 px image (the
    longest path it can hold) in 6; this gives 9 at 64 px and 11 at 256 (tests/test_region_fill.py).
    """
    return max(int(height), int(width)).bit_length() + 2


def sketch_regions(sketch: torch.Tensor, rounds: int | None = None) -> torch.Tensor:
    """(B, C, H, W) sketch in [-1, 1] -> (B, H * W) region labels: for a pixel inside a region,
    1 + the largest flat index in its 4-connected region; 0 on lines.

    Label equivalence (Kalentev et al. 2011) in tensor ops: each round, every pixel sees the
    largest label among its 4-neighbours, every label's root pixel takes the largest that its
    members saw, and every pixel replaces its label by its label's label three times (pointer
    jumping). Labels travel as float32 through the max pooling: exact up to 2**24 pixels.
    """
    batch, _, height, width = sketch.shape
    open_ = (sketch.float().mean(dim=1) >= LINE_THRESHOLD).flatten(1)
    index = torch.arange(1, height * width + 1, device=sketch.device).expand(batch, -1)
    labels = torch.cat([torch.zeros_like(index[:, :1]), torch.where(open_, index, 0)], dim=1)  # slot 0: lines
    for _ in range(rounds or propagation_rounds(height, width)):
        maps = labels[:, 1:].view(batch, 1, height, width).float()
        seen = torch.maximum(F.max_pool2d(maps, (1, 3), 1, (0, 1)), F.max_pool2d(maps, (3, 1), 1, (1, 0)))
        seen = torch.cat([labels[:, :1], torch.where(open_, seen.flatten(1).long(), 0)], dim=1)
        labels = labels.scatter_reduce(1, labels, seen, "amax")
        for _ in range(3):
            labels = labels.gather(1, labels)
    return labels[:, 1:]


def fill_regions(image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each pixel with a label takes its region's median, channel by channel (the lower median of
    an even count); unlabelled (line) pixels keep `image`.

    The median, not the mean: a few pixels painted across a boundary pull a mean but not a median
    (measured on Twemoji held-out characters: 19.07 dB against 18.92 for the mean). In tensor ops:
    one sort puts each region's pixels together in order of value (region, then value quantised
    to 16 bits, as one int64 key); a region's median is its middle position in that order.
    """
    batch, channels, height, width = image.shape
    flat = image.float().flatten(2)
    slot = labels[:, None].expand(-1, channels, -1)  # region per pixel; 0 collects the line pixels
    level = ((flat.clamp(-1, 1) + 1) * 32767.5).round().long()
    order = (slot * 65536 + level).argsort(dim=2)  # sorted position -> pixel
    counts = torch.zeros_like(slot[..., :1]).expand(-1, -1, height * width + 1).scatter_add(
        2, slot, torch.ones_like(slot))
    middle = counts.cumsum(2) - counts + (counts - 1).clamp(min=0) // 2  # region -> its median's position
    median = flat.gather(2, order.gather(2, middle.gather(2, slot)))
    filled = torch.where(labels[:, None] > 0, median, flat)
    return filled.view(batch, channels, height, width).to(image.dtype)


def fill_fidelity_db(sketches: torch.Tensor, targets: torch.Tensor, chunk: int = 16) -> float:
    """PSNR (dB) of `targets` (N, C, H, W in [-1, 1]) against themselves filled by the regions of
    their `sketches` (the same rows): how nearly the art is one flat colour inside every closed
    outline, which is what `fill: regions` assumes of what the network draws. `chunk` rows at a
    time: the fill's sort holds several int64 copies of its images (16 at 256 px: ~100 MB)."""
    error = sum(float((fill_regions(t, sketch_regions(s)) - t).div(2).pow(2).sum())
                for s, t in zip(sketches.split(chunk), targets.split(chunk)))
    return float(-10 * torch.log10(torch.tensor(max(error / targets.numel(), 1e-10))))
