"""Quality and condition metrics for coloured images with ground truth, in torch on any device.

No model code (the caller generates the images). Images are H x W x 3 RGB in [0, 1]; every
public function also takes a uint8 array or tensor (H, W, 3) (what a PNG holds), a PIL image, or
a float tensor (3, H, W) in [-1, 1] (a generator output), through `to_image`. Work stays on the
device the images are on, batched, so validation on a GPU costs milliseconds, not seconds.

Lab and CIEDE2000 come from `colorgan.colour` (2.3 ΔE00 is about a just-noticeable difference);
PSNR and SSIM reproduce scikit-image's `peak_signal_noise_ratio` and `structural_similarity`
(7 x 7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03, data range 1).

Attribute regions need no masks: for one character, the pixels whose ground-truth colour changes
when only that attribute changes, found from the dataset's own variants (see `attribute_regions`).
They and each value's reference colour depend only on the ground truth, so `References` holds
them, computed once and reused by every `evaluate_images` call (validation runs many).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from colorgan.colour import ciede2000, css_lab, srgb_to_lab

PSNR_CAP = 100.0
"""PSNR reported by `evaluate_images` when every pair is identical (JSON cannot hold inf)."""

ValueKey = tuple[str, ...]

_SSIM_WINDOW = 7
_BLOCK_IMAGES = 64         # images scored together: one batch of ops per block, whatever the characters
_SSIM_IMAGES = 8           # images per SSIM call (15 window maps each): bounds memory at 256 px on a CPU
_CHUNK_PIXELS = 2**19      # pixels per CIEDE2000 call when voting regions, likewise


# ---------------------------------------------------------------------------------------------
# inputs


def working_dtype(device: torch.device | str) -> torch.dtype:
    """float64 on the CPU, float32 elsewhere (MPS has no float64; float64 is slow on most GPUs).

    In float64 the numbers match scikit-image's to 1e-9. float32 moves PSNR and ΔE00 by under
    1e-5, but SSIM by up to ~1e-4 (its window variances are differences of near-equal means:
    6e-5 measured on this project's CPU, 1e-5 on an H200), hence float64 where it is cheap.
    """
    return torch.float64 if torch.device(device).type == "cpu" else torch.float32


def to_image(x: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """Any image-like -> H x W x 3 RGB in [0, 1], in `working_dtype`, so metrics never guess a
    convention. Stays on its device unless `device` is given (arrays and PIL images: the CPU).

    Float tensors are generator outputs: (3, H, W) (or (1, 3, H, W)) in [-1, 1]. uint8 arrays,
    uint8 tensors (H, W, 3) and PIL images are scaled by 1/255; float arrays must already be
    H x W x 3 in [0, 1]. Values are clipped to [0, 1] (a generator may overshoot slightly).
    """
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        t = x.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a tensor (3, H, W) in [-1, 1], got shape {tuple(t.shape)}")
        device = torch.device(device) if device is not None else t.device
        t = (t.movedim(0, -1).to(device, working_dtype(device)) + 1.0) / 2.0
    else:
        if hasattr(x, "convert") and hasattr(x, "mode"):  # PIL image
            x = x.convert("RGB")
        t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))
        device = torch.device(device) if device is not None else t.device
        scale = 255.0 if t.dtype == torch.uint8 else 1.0
        t = t.to(device, working_dtype(device)) / scale
    if t.ndim != 3 or t.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {tuple(t.shape)}")
    return t.clamp(0.0, 1.0)


def _stack(images: Iterable[Any], device: torch.device | str | None = None) -> torch.Tensor:
    """Image-likes of one size -> a batch (B, H, W, 3) on `device` (default: the first's)."""
    out = []
    for image in images:
        out.append(to_image(image, device))
        device = out[0].device
    if any(o.shape != out[0].shape for o in out):
        raise ValueError(f"images differ in shape: {sorted({tuple(o.shape) for o in out})}")
    return torch.stack(out)


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p = to_image(pred)
    t = to_image(target, p.device)
    if p.shape != t.shape:
        raise ValueError(f"pred {tuple(p.shape)} and target {tuple(t.shape)} differ in shape")
    return p[None], t[None]


def to_lab(image: Any) -> torch.Tensor:
    """CIELAB (D65) of an image; Lab is where colour distances mean what the eye sees."""
    return srgb_to_lab(to_image(image))


def _medians(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per-column medians of consecutive row groups of `values` (N, C), `counts` (int64, on the
    CPU) rows each: (groups, C), from one sort of the groups padded with +inf to one length.

    numpy's median (the mean of the two middle values for an even count; torch.median returns
    the lower one), so a colour sitting between two fills is reported as numpy would.
    """
    device = values.device
    groups = torch.arange(len(counts)).repeat_interleave(counts).to(device)
    position = (torch.arange(len(values)) - (counts.cumsum(0) - counts).repeat_interleave(counts)).to(device)
    padded = values.new_full((len(counts), int(counts.max()), values.shape[1]), float("inf"))
    padded[groups, position] = values
    ranked = padded.sort(dim=1).values
    rows, counts = torch.arange(len(counts), device=device), counts.to(device)
    return (ranked[rows, (counts - 1) // 2] + ranked[rows, counts // 2]) / 2


def _median(values: torch.Tensor) -> torch.Tensor:
    """The per-column median of all rows of `values` (N, C), as numpy computes it."""
    return _medians(values, torch.tensor([len(values)]))[0]


# ---------------------------------------------------------------------------------------------
# whole-image quality, batched: (B, H, W, 3) -> (B,)


def _psnr(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10((p - t).square().mean(dim=(1, 2, 3)))  # inf where identical


def _ssim(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """skimage's structural_similarity(channel_axis=-1, data_range=1.0) for each image.

    Window statistics come from the valid 7 x 7 windows only, which are exactly the pixels
    skimage keeps after cropping its filter's border, so no padding mode matters. The five
    statistics of every image and channel are pooled in one call, laid out channels-last
    (H, W, 15 B): torch's CPU pooling vectorises over channels only, 2.5x faster than (B, 3, H, W).
    """
    b, h, w, _ = p.shape
    if min(h, w) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {_SSIM_WINDOW} x {_SSIM_WINDOW} pixels")
    maps = torch.stack([m.permute(1, 2, 0, 3) for m in (p, t, p * p, t * t, p * t)], dim=2).reshape(1, h, w, -1)
    stats = F.avg_pool2d(maps.permute(0, 3, 1, 2), _SSIM_WINDOW, stride=1)[0]
    ux, uy, uxx, uyy, uxy = stats.reshape(5, b, 3, *stats.shape[1:]).unbind(0)
    cov = _SSIM_WINDOW**2 / (_SSIM_WINDOW**2 - 1)  # sample covariance
    vx, vy, vxy = cov * (uxx - ux * ux), cov * (uyy - uy * uy), cov * (uxy - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def _l1(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (p - t).abs().mean(dim=(1, 2, 3))


def psnr(pred: Any, target: Any) -> float:
    """PSNR in dB on RGB in [0, 1]; inf for identical images (no noise at all)."""
    return float(_psnr(*_pair(pred, target))[0])


def ssim(pred: Any, target: Any) -> float:
    """SSIM on RGB in [0, 1] (per channel, averaged); images need sides of at least 7 pixels."""
    return float(_ssim(*_pair(pred, target))[0])


def l1(pred: Any, target: Any) -> float:
    """Mean absolute RGB difference in [0, 1] units: the generator's own reconstruction loss."""
    return float(_l1(*_pair(pred, target))[0])


# ---------------------------------------------------------------------------------------------
# attribute regions and colours


def attribute_regions(
    targets: Mapping[ValueKey, Any],
    attributes: Sequence[str],
    threshold: float = 5.0,
    min_share: float = 0.5,
    lab: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per attribute, the boolean H x W mask of pixels that this attribute colours.

    `targets` are ONE character's ground-truth images keyed by value tuples (one value per
    attribute, in `attributes` order). For attribute a, every pair of variants that differ only in
    a is compared; a pixel is in a's region if its CIEDE2000 ΔE exceeds `threshold` in at least
    `min_share` of those pairs. Voting (rather than "differs in any pair") keeps out pixels that
    change only by accident in a few images (antialiased outline edges, compression noise).
    A character with no pair differing only in a gets an empty region (all False): nothing in its
    data says where a is drawn. `lab` may pass the targets' Lab, stacked in `targets` order.
    Pixels equal in every variant (outline, skin, background: most of an image) have ΔE 0 in every
    pair, so only the others are compared.
    """
    keys = [tuple(k) for k in targets]
    bad = [k for k in keys if len(k) != len(attributes)]
    if bad:
        raise ValueError(f"key {bad[0]!r} does not hold one value per attribute {list(attributes)}")
    if not keys:
        raise ValueError("attribute_regions needs at least one ground-truth image")
    lab = lab if lab is not None else srgb_to_lab(_stack(targets.values()))
    flat = lab.flatten(1, 2)
    varies = (flat != flat[:1]).any(dim=2).any(dim=0).nonzero().squeeze(1)
    flat = flat[:, varies]
    per_call = max(1, _CHUNK_PIXELS // max(1, len(varies)))
    regions = {}
    for i, attr in enumerate(attributes):
        groups: dict[ValueKey, list[int]] = defaultdict(list)
        for j, k in enumerate(keys):
            groups[k[:i] + k[i + 1:]].append(j)
        pairs = [pair for group in groups.values() for pair in itertools.combinations(group, 2)]
        votes = torch.zeros(lab.shape[1] * lab.shape[2], dtype=torch.int64, device=lab.device)
        for start in range(0, len(pairs), per_call):
            a, b = zip(*pairs[start:start + per_call])
            votes[varies] += (ciede2000(flat[list(a)], flat[list(b)]) > threshold).sum(dim=0)
        votes = votes.reshape(lab.shape[1:3])
        regions[attr] = votes >= min_share * len(pairs) if pairs else torch.zeros_like(votes, dtype=torch.bool)
    return regions


def region_color(image: Any, mask: Any, lab: torch.Tensor | None = None) -> torch.Tensor:
    """Robust colour (Lab, shape (3,)) of a region: the per-channel median in Lab.

    Median, not mean: a region is a flat fill plus a shade tone and a few edge pixels, and the
    median lands on the dominant fill instead of a blend of all three. NaN for an empty mask.
    `lab` may pass the image's precomputed Lab.
    """
    lab = lab if lab is not None else to_lab(image)
    mask = torch.as_tensor(mask, dtype=torch.bool, device=lab.device)
    if not mask.any():
        return torch.full((3,), float("nan"), dtype=lab.dtype, device=lab.device)
    return _median(lab[mask])


def condition_error(pred: Any, target: Any, mask: Any) -> float:
    """Mean CIEDE2000 ΔE between pred and target over the region's pixels; NaN if empty."""
    p, t = _pair(pred, target)
    mask = torch.as_tensor(mask, dtype=torch.bool, device=p.device)
    if not mask.any():
        return float("nan")
    return float(ciede2000(srgb_to_lab(p[0][mask]), srgb_to_lab(t[0][mask])).mean())


def value_colors(
    targets: Mapping[ValueKey, Any],
    attributes: Sequence[str],
    attribute: str,
    regions: Mapping[str, Any] | None = None,
    values: Iterable[str] = (),
    lab: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Reference Lab colour of each value of `attribute` for ONE character.

    A value's colour is the median Lab over the attribute's region of all this character's
    ground-truth images having that value. Per character, not over the dataset, because shading
    and outline coverage are shared by a character's variants, so a generated image is compared
    with references drawn the same way. Values in `values` that this character's ground truth
    lacks (or all values, if its region is empty) fall back to the CSS colour of the value's name
    (PIL.ImageColor); a name PIL does not know is left out (it cannot be judged).
    `lab` may pass the targets' Lab, stacked in `targets` order.
    """
    i = list(attributes).index(attribute)
    keys = [tuple(k) for k in targets]
    lab = lab if lab is not None else srgb_to_lab(_stack(targets.values()))
    if regions is None:
        regions = attribute_regions(targets, attributes, lab=lab)
    mask = torch.as_tensor(regions[attribute], dtype=torch.bool, device=lab.device)
    colors: dict[str, torch.Tensor] = {}
    if mask.any():
        rows: dict[str, list[int]] = defaultdict(list)
        for j, k in enumerate(keys):
            rows[k[i]].append(j)
        pixels = lab[:, mask]
        colors = {v: _median(pixels[js].reshape(-1, 3)) for v, js in rows.items()}
    for v in values:
        if v not in colors and (css := css_lab(v)) is not None:
            colors[v] = css.to(lab)
    return colors


def nearest_value(color_lab: Any, value_colors: Mapping[str, Any]) -> str:
    """The value whose reference colour is nearest (CIEDE2000) to `color_lab`."""
    if not value_colors:
        raise ValueError("nearest_value needs at least one value colour")
    colors = {name: torch.as_tensor(lab) for name, lab in value_colors.items()}
    like = next(iter(colors.values()))
    return Palette.build({None: colors}, like).nearest([None], torch.as_tensor(color_lab).to(like)[None])[0]


@dataclass
class Palette:
    """One attribute's value colours for every character, NaN-padded into one tensor, so each image
    is matched against its own character's colours in a single batched call."""

    row: dict[Any, int]        # character -> its row in `lab`
    names: list[list[str]]     # per row, the values whose colours it holds, in column order
    lab: torch.Tensor          # (characters, most values, 3); NaN past a row's values

    @classmethod
    def build(cls, colors: Mapping[Any, Mapping[str, torch.Tensor]], like: torch.Tensor) -> Palette:
        width = max([len(c) for c in colors.values()], default=0)
        lab = torch.full((len(colors), width, 3), float("nan"), dtype=like.dtype, device=like.device)
        for i, c in enumerate(colors.values()):
            if c:
                lab[i, :len(c)] = torch.stack(list(c.values())).to(like)
        return cls({ch: i for i, ch in enumerate(colors)}, [list(c) for c in colors.values()], lab)

    def nearest(self, characters: Sequence[Any], lab: torch.Tensor) -> list[str]:
        """For each colour lab[i] (Lab), the value of characters[i] whose colour is nearest."""
        rows = [self.row[ch] for ch in characters]
        dist = ciede2000(lab[:, None], self.lab[rows]).nan_to_num(nan=float("inf"))
        return [self.names[r][j] for r, j in zip(rows, dist.argmin(dim=1).tolist())]


@dataclass
class References:
    """What scoring needs from the ground truth, computed once: per character, the flat pixel
    indices of each non-empty attribute region, and per attribute every character's value colours.

    It depends on the ground truth only, so a run builds it once and validation reuses it at
    every `eval_every` (`References.build` is the slow part of scoring).
    """

    regions: dict[Any, dict[str, torch.Tensor]]
    palettes: dict[str, Palette]

    @classmethod
    def build(cls, ground_truth: Mapping[Any, Mapping[ValueKey, Any]], attributes: Sequence[str],
              threshold: float = 5.0, device: torch.device | str | None = None) -> References:
        """`ground_truth`: {character: {value tuple: image}}, every variant of each character
        (a test split alone may lack the pairs that define a region). Lives on `device`
        (default: the images')."""
        attributes = list(attributes)
        values = {a: sorted({k[i] for v in ground_truth.values() for k in v}) for i, a in enumerate(attributes)}
        regions: dict[Any, dict[str, torch.Tensor]] = {}
        colors: dict[str, dict[Any, dict[str, torch.Tensor]]] = {a: {} for a in attributes}
        lab = torch.empty(0)
        for ch, targets in ground_truth.items():
            targets = {tuple(k): v for k, v in targets.items()}
            lab = srgb_to_lab(_stack(targets.values(), device))
            masks = attribute_regions(targets, attributes, threshold, lab=lab)
            regions[ch] = {a: m.flatten().nonzero().squeeze(1) for a, m in masks.items() if m.any()}
            for a in attributes:
                colors[a][ch] = value_colors(targets, attributes, a, masks, values[a], lab)
        return cls(regions, {a: Palette.build(colors[a], lab) for a in attributes})


# ---------------------------------------------------------------------------------------------
# aggregation


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


def ground_truth(records: list[Any], attributes: list[str],
                  references: Mapping[Any, Mapping[ValueKey, Any]] | None) -> dict[Any, dict[ValueKey, Any]]:
    """`references` plus the records' own targets, as {character: {value tuple: image}}."""
    gts: dict[Any, dict[ValueKey, Any]] = defaultdict(dict)
    for ch, variants in (references or {}).items():
        gts[ch].update({tuple(k): v for k, v in variants.items()})
    for r in records:
        key = tuple(str(_field(r, "conditions")[a]) for a in attributes)
        gts[_field(r, "character")].setdefault(key, _field(r, "target"))
    return gts


def _judge(pred: torch.Tensor, target: torch.Tensor, attribute: str, characters: list[Any],
           wanted: list[str], references: References) -> tuple[torch.Tensor, list[bool]]:
    """One attribute over a block of images (B, H * W, 3), all characters in one batch: the mean
    ΔE00 over the region of each image whose character has one, and for those whose wanted value
    has a reference colour, whether the region's median colour is nearest that value's."""
    regions = [references.regions[ch].get(attribute) for ch in characters]
    rows = [i for i, pixels in enumerate(regions) if pixels is not None]
    if not rows:
        return pred.new_zeros(0), []
    counts = torch.tensor([len(regions[i]) for i in rows])
    images = torch.repeat_interleave(torch.tensor(rows), counts).to(pred.device)
    pixels = torch.cat([regions[i].to(pred.device) for i in rows])
    p, t = srgb_to_lab(pred[images, pixels]), srgb_to_lab(target[images, pixels])
    group = torch.repeat_interleave(torch.arange(len(rows)), counts).to(pred.device)
    errors = p.new_zeros(len(rows)).index_add_(0, group, ciede2000(p, t)) / counts.to(p)
    palette = references.palettes[attribute]
    judged = [j for j, i in enumerate(rows) if wanted[i] in palette.names[palette.row[characters[i]]]]
    if not judged:
        return errors, []
    got = palette.nearest([characters[rows[j]] for j in judged], _medians(p, counts)[judged])
    return errors, [g == wanted[rows[j]] for g, j in zip(got, judged)]


def _mean(values: torch.Tensor | list) -> float | None:
    """Mean of per-image values, None (JSON null) when there are none."""
    return float(torch.as_tensor(values, dtype=torch.float64).mean()) if len(values) else None


def evaluate_images(
    records: Iterable[Any],
    attributes: Sequence[str],
    references: References | Mapping[Any, Mapping[ValueKey, Any]] | None = None,
    threshold: float = 5.0,
) -> dict[str, Any]:
    """Aggregate metrics over generated images; the result is plain JSON-able numbers.

    Each record (a mapping or an object) has `pred`, `target`, `character` and `conditions`
    ({attribute: value}). `references` is either a prebuilt `References` covering every record's
    character (validation builds it once), or `{character: {value tuple: ground-truth image}}`
    (every variant of the character) from which, plus the records' own targets, one is built.
    Returns {"psnr", "ssim", "l1", "condition_error": {attr: mean ΔE00},
    "condition_accuracy": {attr: share}, "n"}. PSNR is the mean over finite values, or
    PSNR_CAP (100.0) when every pair is identical. An (image, attribute) whose character has an
    empty region for the attribute, or whose requested value has no reference colour, is not
    judged; a metric with nothing to average is None (JSON null), never NaN or inf.
    """
    records = list(records)
    attributes = list(attributes)
    if not isinstance(references, References):
        references = References.build(ground_truth(records, attributes, references), attributes, threshold)
    unknown = [_field(r, "character") for r in records if _field(r, "character") not in references.regions]
    if unknown:
        raise ValueError(f"references hold no character {unknown[0]!r}")
    quality: list[torch.Tensor] = []
    errors: dict[str, list[torch.Tensor]] = {a: [] for a in attributes}
    hits: dict[str, list[bool]] = {a: [] for a in attributes}
    for start in range(0, len(records), _BLOCK_IMAGES):
        block = records[start:start + _BLOCK_IMAGES]
        pred = _stack(_field(r, "pred") for r in block)
        target = _stack((_field(r, "target") for r in block), pred.device)
        for p, t in zip(pred.split(_SSIM_IMAGES), target.split(_SSIM_IMAGES)):
            quality.append(torch.stack([_psnr(p, t), _ssim(p, t), _l1(p, t)], dim=1))
        characters = [_field(r, "character") for r in block]
        for a in attributes:
            wanted = [str(_field(r, "conditions")[a]) for r in block]
            error, hit = _judge(pred.flatten(1, 2), target.flatten(1, 2), a, characters, wanted, references)
            errors[a].append(error.cpu())
            hits[a].extend(hit)
    psnr, ssim, l1 = torch.cat(quality).cpu().unbind(1) if quality else (torch.empty(0),) * 3
    finite = psnr[torch.isfinite(psnr)]
    return {
        "psnr": _mean(finite) if len(finite) else (PSNR_CAP if len(psnr) else None),
        "ssim": _mean(ssim),
        "l1": _mean(l1),
        "condition_error": {a: _mean(torch.cat(errors[a]) if errors[a] else []) for a in attributes},
        "condition_accuracy": {a: _mean(hits[a]) for a in attributes},
        "n": len(records),
    }
