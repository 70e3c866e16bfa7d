"""Quality and condition metrics for coloured images with ground truth.

Pure functions on arrays; no model code (the caller generates the images). Images are float
H x W x 3 RGB in [0, 1]; every public function also takes a torch tensor (3, H, W) in [-1, 1]
(a generator output), a uint8 array or a PIL image, through `to_image`.

Colour science comes from scikit-image (rgb2lab: sRGB, D65, 2 degree observer;
deltaE_ciede2000), so ΔE numbers match the published CIEDE2000 definition. 2.3 ΔE00 is about a
just-noticeable difference.

Attribute regions need no masks: for one character, the pixels whose ground-truth colour changes
when only that attribute changes, found from the dataset's own variants (see `attribute_regions`).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PSNR_CAP = 100.0
"""PSNR reported by `evaluate_images` when every pair is identical (JSON cannot hold inf)."""

ValueKey = tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# inputs


def to_image(x: Any) -> np.ndarray:
    """Any image-like -> float64 H x W x 3 RGB in [0, 1], so metrics never guess a convention.

    torch tensors are taken as generator outputs: (3, H, W) (or (1, 3, H, W)) in [-1, 1].
    uint8 arrays and PIL images are scaled by 1/255; float arrays must already be H x W x 3 in
    [0, 1]. Values are clipped to [0, 1] (a generator may overshoot slightly).
    """
    if type(x).__module__.startswith("torch"):
        t = x.detach().to("cpu").float()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a tensor (3, H, W) in [-1, 1], got shape {tuple(t.shape)}")
        x = (t.permute(1, 2, 0).numpy().astype(np.float64) + 1.0) / 2.0
    elif hasattr(x, "convert") and hasattr(x, "mode"):  # PIL image
        x = np.asarray(x.convert("RGB"))
    arr = np.asarray(x)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    return np.clip(arr.astype(np.float64, copy=False), 0.0, 1.0)


def _pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = to_image(pred), to_image(target)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} differ in shape")
    return p, t


def to_lab(image: Any) -> np.ndarray:
    """CIELAB (D65) of an image; Lab is where colour distances mean what the eye sees."""
    return rgb2lab(to_image(image))


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 ΔE between Lab colours (last axis L, a, b); skimage's implementation."""
    return deltaE_ciede2000(np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64),
                            channel_axis=-1)


# ---------------------------------------------------------------------------------------------
# whole-image quality


def psnr(pred: Any, target: Any) -> float:
    """PSNR in dB on RGB in [0, 1]; inf for identical images (no noise at all)."""
    p, t = _pair(pred, target)
    if np.array_equal(p, t):
        return float("inf")
    return float(peak_signal_noise_ratio(t, p, data_range=1.0))


def ssim(pred: Any, target: Any) -> float:
    """SSIM on RGB in [0, 1] (per channel, averaged); images need sides of at least 7 pixels."""
    p, t = _pair(pred, target)
    return float(structural_similarity(t, p, channel_axis=-1, data_range=1.0))


def l1(pred: Any, target: Any) -> float:
    """Mean absolute RGB difference in [0, 1] units: the generator's own reconstruction loss."""
    p, t = _pair(pred, target)
    return float(np.mean(np.abs(p - t)))


# ---------------------------------------------------------------------------------------------
# attribute regions and colours


def attribute_regions(
    targets: Mapping[ValueKey, Any],
    attributes: Sequence[str],
    threshold: float = 5.0,
    min_share: float = 0.5,
    labs: Mapping[ValueKey, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per attribute, the boolean H x W mask of pixels that this attribute colours.

    `targets` are ONE character's ground-truth images keyed by value tuples (one value per
    attribute, in `attributes` order). For attribute a, every pair of variants that differ only in
    a is compared; a pixel is in a's region if its CIEDE2000 ΔE exceeds `threshold` in at least
    `min_share` of those pairs. Voting (rather than "differs in any pair") keeps out pixels that
    change only by accident in a few images (antialiased outline edges, compression noise).
    A character with no pair differing only in a gets an empty region (all False): nothing in its
    data says where a is drawn. `labs` may pass precomputed Lab images (same keys) to save work.
    """
    keys = [tuple(k) for k in targets]
    bad = [k for k in keys if len(k) != len(attributes)]
    if bad:
        raise ValueError(f"key {bad[0]!r} does not hold one value per attribute {list(attributes)}")
    if not keys:
        raise ValueError("attribute_regions needs at least one ground-truth image")
    labs = labs if labs is not None else {k: to_lab(targets[k]) for k in keys}
    shape = labs[keys[0]].shape[:2]
    regions = {}
    for i, attr in enumerate(attributes):
        groups: dict[ValueKey, list[ValueKey]] = defaultdict(list)
        for k in keys:
            groups[k[:i] + k[i + 1:]].append(k)
        votes = np.zeros(shape, dtype=np.int64)
        pairs = 0
        for group in groups.values():
            for ka, kb in itertools.combinations(group, 2):
                votes += delta_e(labs[ka], labs[kb]) > threshold
                pairs += 1
        regions[attr] = (votes >= min_share * pairs) if pairs else np.zeros(shape, dtype=bool)
    return regions


def region_color(image: Any, mask: np.ndarray, lab: np.ndarray | None = None) -> np.ndarray:
    """Robust colour (Lab, shape (3,)) of a region: the per-channel median in Lab.

    Median, not mean: a region is a flat fill plus a shade tone and a few edge pixels, and the
    median lands on the dominant fill instead of a blend of all three. NaN for an empty mask.
    `lab` may pass the image's precomputed Lab.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(3, np.nan)
    lab = lab if lab is not None else to_lab(image)
    return np.median(lab[mask], axis=0)


def condition_error(pred: Any, target: Any, mask: np.ndarray) -> float:
    """Mean CIEDE2000 ΔE between pred and target over the region's pixels; NaN if empty."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    p, t = _pair(pred, target)
    return float(np.mean(delta_e(rgb2lab(p)[mask], rgb2lab(t)[mask])))


def css_lab(name: str) -> np.ndarray | None:
    """Lab of a CSS colour name or #rrggbb (PIL.ImageColor); None if PIL does not know it."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(name)[:3]
    except ValueError:
        return None
    return rgb2lab(np.asarray(rgb, dtype=np.float64).reshape(1, 1, 3) / 255.0)[0, 0]


def value_colors(
    targets: Mapping[ValueKey, Any],
    attributes: Sequence[str],
    attribute: str,
    regions: Mapping[str, np.ndarray] | None = None,
    values: Iterable[str] = (),
    labs: Mapping[ValueKey, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Reference Lab colour of each value of `attribute` for ONE character.

    A value's colour is the median Lab over the attribute's region of all this character's
    ground-truth images having that value. Per character, not over the dataset, because shading
    and outline coverage are shared by a character's variants, so a generated image is compared
    with references drawn the same way. Values in `values` that this character's ground truth
    lacks (or all values, if its region is empty) fall back to the CSS colour of the value's name
    (PIL.ImageColor); a name PIL does not know is left out (it cannot be judged).
    """
    i = list(attributes).index(attribute)
    labs = labs if labs is not None else {k: to_lab(img) for k, img in targets.items()}
    if regions is None:
        regions = attribute_regions(targets, attributes, labs=labs)
    mask = np.asarray(regions[attribute], dtype=bool)
    pixels: dict[str, list[np.ndarray]] = defaultdict(list)
    if mask.any():
        for key, lab in labs.items():
            pixels[key[i]].append(lab[mask])
    colors = {v: np.median(np.concatenate(px), axis=0) for v, px in pixels.items()}
    for v in values:
        if v not in colors and (lab := css_lab(v)) is not None:
            colors[v] = lab
    return colors


def nearest_value(color_lab: np.ndarray, value_colors: Mapping[str, np.ndarray]) -> str:
    """The value whose reference colour is nearest (CIEDE2000) to `color_lab`."""
    if not value_colors:
        raise ValueError("nearest_value needs at least one value colour")
    names = list(value_colors)
    refs = np.stack([np.asarray(value_colors[n], dtype=np.float64) for n in names])
    dist = delta_e(np.broadcast_to(np.asarray(color_lab, dtype=np.float64), refs.shape), refs)
    return names[int(np.argmin(dist))]


# ---------------------------------------------------------------------------------------------
# aggregation


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def evaluate_images(
    records: Iterable[Any],
    attributes: Sequence[str],
    references: Mapping[Any, Mapping[ValueKey, Any]] | None = None,
    threshold: float = 5.0,
) -> dict[str, Any]:
    """Aggregate metrics over generated images; the result is plain JSON-able numbers.

    Each record (a mapping or an object) has `pred`, `target`, `character` and `conditions`
    ({attribute: value}). Regions and value colours are computed per character from
    `references[character]` ({value tuple: ground-truth image}, every variant of the character,
    since a test split alone may lack the pairs that define a region) plus the records' own
    targets. Returns {"psnr", "ssim", "l1", "condition_error": {attr: mean ΔE00},
    "condition_accuracy": {attr: share}, "n"}. PSNR is the mean over finite values, or
    PSNR_CAP (100.0) when every pair is identical. An (image, attribute) whose character has an
    empty region for the attribute, or whose requested value has no reference colour, is not
    judged; a metric with nothing to average is None (JSON null), never NaN or inf.
    """
    records = list(records)
    attributes = list(attributes)
    gts: dict[Any, dict[ValueKey, Any]] = defaultdict(dict)
    for ch, variants in (references or {}).items():
        gts[ch].update({tuple(k): v for k, v in variants.items()})
    for r in records:
        key = tuple(str(_field(r, "conditions")[a]) for a in attributes)
        gts[_field(r, "character")].setdefault(key, _field(r, "target"))
    all_values = {a: sorted({k[i] for v in gts.values() for k in v}) for i, a in enumerate(attributes)}

    cache: dict[Any, tuple[dict, dict]] = {}

    def character_refs(ch: Any) -> tuple[dict, dict]:
        """Regions and value colours of a character, computed once from its ground truth."""
        if ch not in cache:
            labs = {k: to_lab(img) for k, img in gts[ch].items()}
            regions = attribute_regions(gts[ch], attributes, threshold=threshold, labs=labs)
            colors = {a: value_colors(gts[ch], attributes, a, regions, all_values[a], labs)
                      for a in attributes}
            cache[ch] = (regions, colors)
        return cache[ch]

    psnrs, ssims, l1s = [], [], []
    errors: dict[str, list[float]] = {a: [] for a in attributes}
    hits: dict[str, list[float]] = {a: [] for a in attributes}
    for r in records:
        pred, target = _pair(_field(r, "pred"), _field(r, "target"))
        psnrs.append(psnr(pred, target))
        ssims.append(ssim(pred, target))
        l1s.append(l1(pred, target))
        regions, colors = character_refs(_field(r, "character"))
        pred_lab, target_lab = rgb2lab(pred), rgb2lab(target)
        for a in attributes:
            mask = regions[a]
            if not mask.any():
                continue
            errors[a].append(float(np.mean(delta_e(pred_lab[mask], target_lab[mask]))))
            wanted = str(_field(r, "conditions")[a])
            if wanted in colors[a]:
                got = nearest_value(region_color(pred, mask, pred_lab), colors[a])
                hits[a].append(float(got == wanted))
    finite = [p for p in psnrs if np.isfinite(p)]
    return {
        "psnr": _mean(finite) if finite else (PSNR_CAP if psnrs else None),
        "ssim": _mean(ssims),
        "l1": _mean(l1s),
        "condition_error": {a: _mean(errors[a]) for a in attributes},
        "condition_accuracy": {a: _mean(hits[a]) for a in attributes},
        "n": len(records),
    }
