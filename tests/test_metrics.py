"""Tests for colorgan.colour and colorgan.metrics: CIEDE2000 against published data, Lab, PSNR and
SSIM against scikit-image, and the metrics on a synthetic character whose attribute regions are
known exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorgan import metrics as M
from colorgan.colour import ciede2000, css_lab, srgb_to_lab

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: all 34 pairs.
# Columns: L1, a1, b1, L2, a2, b2, ΔE00 (4 decimals). Typed from the paper.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_sharma_table_is_complete():
    assert len(SHARMA) == 34


@pytest.mark.parametrize("row", SHARMA, ids=[f"pair{i + 1}" for i in range(len(SHARMA))])
def test_ciede2000_matches_sharma(row):
    lab1, lab2, expected = (torch.tensor(row[:3], dtype=torch.float64),
                            torch.tensor(row[3:6], dtype=torch.float64), row[6])
    assert float(deltaE_ciede2000(lab1.numpy(), lab2.numpy())) == pytest.approx(expected, abs=1e-4)
    assert float(ciede2000(lab1, lab2)) == pytest.approx(expected, abs=1e-4)
    assert float(ciede2000(lab2, lab1)) == pytest.approx(expected, abs=1e-4)  # symmetric


def test_ciede2000_vectorised_and_broadcasting():
    table = torch.tensor(SHARMA, dtype=torch.float64)
    torch.testing.assert_close(ciede2000(table[:, :3], table[:, 3:6]), table[:, 6], atol=1e-4, rtol=0)
    one_to_many = ciede2000(table[0, :3], table[:, 3:6].reshape(2, 17, 3))
    assert one_to_many.shape == (2, 17)
    torch.testing.assert_close(one_to_many.flatten(), ciede2000(table[:1, :3], table[:, 3:6]))


def test_ciede2000_matches_skimage_on_image_colours():
    rng = np.random.default_rng(3)
    lab1, lab2 = rgb2lab(rng.random((4000, 3))), rgb2lab(rng.random((4000, 3)))
    expected = deltaE_ciede2000(lab1, lab2)
    got = ciede2000(torch.from_numpy(lab1), torch.from_numpy(lab2))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-9)
    got32 = ciede2000(torch.from_numpy(lab1).float(), torch.from_numpy(lab2).float())
    np.testing.assert_allclose(got32.double().numpy(), expected, atol=1e-3)


def test_srgb_to_lab_matches_skimage():
    rng = np.random.default_rng(4)
    levels = np.arange(256) / 255.0  # every uint8 level in each channel, plus random colours
    rgb = np.concatenate([np.stack([levels, levels[::-1], np.roll(levels, 100)], axis=-1), rng.random((4000, 3))])
    np.testing.assert_allclose(srgb_to_lab(torch.from_numpy(rgb)).numpy(), rgb2lab(rgb), atol=1e-9)
    np.testing.assert_allclose(srgb_to_lab(torch.from_numpy(rgb).float()).double().numpy(), rgb2lab(rgb), atol=1e-3)
    image = skdata.chelsea()[:64, :80] / 255.0
    np.testing.assert_allclose(srgb_to_lab(torch.from_numpy(image)).numpy(), rgb2lab(image), atol=1e-9)


def test_css_lab():
    np.testing.assert_allclose(css_lab(" crimson ").numpy(), rgb2lab(np.array([220, 20, 60]) / 255.0), atol=1e-9)
    assert css_lab("notacolour") is None and css_lab(None) is None


# ---------------------------------------------------------------------------------------------
# whole-image quality


def test_psnr_hand_computed_and_identical():
    target = np.full((8, 8, 3), 0.5)
    assert M.psnr(target, target) == math.inf
    pred = target + 0.1  # mse 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert M.psnr(pred, target) == pytest.approx(20.0, abs=1e-6)


def test_ssim_identical_and_noisy():
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 3))
    assert M.ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1)
    assert M.ssim(noisy, img) < 0.99


def test_l1_hand_computed():
    pred = np.zeros((2, 2, 3))
    target = np.zeros((2, 2, 3))
    target[0, 0] = [0.3, 0.6, 0.9]  # sum 1.8 over 12 values
    assert M.l1(pred, target) == pytest.approx(0.15)


def _pairs_to_compare():
    """(pred, target) pairs: random, noisy, non-square and tiny, and real photographs degraded."""
    rng = np.random.default_rng(5)
    random = rng.random((24, 40, 3))
    yield random, rng.random((24, 40, 3))
    yield np.clip(random + rng.normal(0, 0.05, random.shape), 0, 1), random
    yield rng.random((7, 9, 3)), rng.random((7, 9, 3))
    for photo in (skdata.chelsea(), skdata.coffee()):
        target = photo[:96, :128]
        noisy = np.clip(target + rng.normal(0, 12, target.shape), 0, 255).round().astype(np.uint8)
        yield noisy / 255.0, target / 255.0
        yield (target // 16 * 16) / 255.0, target / 255.0  # posterised: flat areas, hard edges


@pytest.mark.parametrize("i", range(7))
def test_psnr_and_ssim_match_skimage(i):
    pred, target = list(_pairs_to_compare())[i]
    assert M.psnr(pred, target) == pytest.approx(peak_signal_noise_ratio(target, pred, data_range=1.0), abs=1e-9)
    expected = structural_similarity(target, pred, channel_axis=-1, data_range=1.0)
    assert M.ssim(pred, target) == pytest.approx(expected, abs=1e-9)
    assert M.l1(pred, target) == pytest.approx(np.abs(pred - target).mean(), abs=1e-12)


def test_medians_of_ragged_groups_match_numpy():
    """evaluate_images takes every image's region colour with one padded sort."""
    rng = np.random.default_rng(6)
    counts = [1, 2, 7, 300, 64]
    values = rng.normal(0, 30, (sum(counts), 3))
    got = M._medians(torch.from_numpy(values), torch.tensor(counts))
    expected = [np.median(group, axis=0) for group in np.split(values, np.cumsum(counts)[:-1])]
    np.testing.assert_array_equal(got.numpy(), np.stack(expected))


def test_ssim_needs_seven_pixels():
    with pytest.raises(ValueError, match="7 x 7"):
        M.ssim(np.zeros((6, 8, 3)), np.zeros((6, 8, 3)))


def test_to_image_accepts_torch_and_uint8():
    rng = np.random.default_rng(1)
    img = rng.random((8, 8, 3))
    tensor = torch.from_numpy(img * 2 - 1).permute(2, 0, 1).float()
    np.testing.assert_allclose(M.to_image(tensor).numpy(), img, atol=1e-6)
    np.testing.assert_allclose(M.to_image(tensor[None]).numpy(), img, atol=1e-6)
    assert M.to_image(tensor).dtype == torch.float64  # the CPU works in float64
    assert M.psnr(tensor, img) > 100
    u8 = (img * 255).round().astype(np.uint8)
    np.testing.assert_allclose(M.to_image(u8).numpy(), u8 / 255.0)
    np.testing.assert_allclose(M.to_image(torch.from_numpy(u8)).numpy(), u8 / 255.0)  # a PNG's pixels
    with pytest.raises(ValueError):
        M.to_image(np.zeros((8, 8)))
    with pytest.raises(ValueError):
        M.l1(np.zeros((8, 8, 3)), np.zeros((4, 4, 3)))


# ---------------------------------------------------------------------------------------------
# a synthetic character: hair block on top, shirt block below, outline, shade tone

HAIR = {"crimson": (220, 20, 60), "gold": (255, 215, 0), "navy": (0, 0, 128)}
SHIRT = {"forestgreen": (34, 139, 34), "orange": (255, 165, 0), "purple": (128, 0, 128)}
ATTRS = ["hair", "shirt"]
HAIR_BOX = (slice(3, 13), slice(6, 26))
SHIRT_BOX = (slice(18, 30), slice(4, 28))


def box_mask(box) -> np.ndarray:
    mask = np.zeros((32, 32), dtype=bool)
    mask[box] = True
    return mask


def fill(img, box, rgb):
    """A flat fill with a darker shade tone on its lower third, as the icon set draws."""
    colour = np.array(rgb) / 255.0
    rows = range(box[0].start, box[0].stop)
    shade_from = box[0].stop - (box[0].stop - box[0].start) // 3
    for y in rows:
        img[y, box[1]] = colour * (0.75 if y >= shade_from else 1.0)


def draw(hair: str, shirt: str) -> np.ndarray:
    img = np.ones((32, 32, 3))
    for box in (HAIR_BOX, SHIRT_BOX):  # a black outline one pixel outside each block
        outer = (slice(box[0].start - 1, box[0].stop + 1), slice(box[1].start - 1, box[1].stop + 1))
        img[outer] = 0.0
    fill(img, HAIR_BOX, HAIR[hair])
    fill(img, SHIRT_BOX, SHIRT[shirt])
    return img


@pytest.fixture(scope="module")
def variants():
    return {(h, s): draw(h, s) for h in HAIR for s in SHIRT}


def test_regions_equal_the_blocks(variants):
    regions = M.attribute_regions(variants, ATTRS)
    np.testing.assert_array_equal(regions["hair"].numpy(), box_mask(HAIR_BOX))
    np.testing.assert_array_equal(regions["shirt"].numpy(), box_mask(SHIRT_BOX))


def test_regions_vote_out_accidental_changes(variants):
    noisy = dict(variants)
    speck = variants[("crimson", "orange")].copy()
    speck[0, 0] = [0.2, 0.9, 0.1]  # an artefact in one image only: in 2 of 9 hair pairs
    noisy[("crimson", "orange")] = speck
    regions = M.attribute_regions(noisy, ATTRS)
    np.testing.assert_array_equal(regions["hair"].numpy(), box_mask(HAIR_BOX))
    # with "differs in any pair" the speck would leak in
    leaky = M.attribute_regions(noisy, ATTRS, min_share=1e-9)
    assert leaky["hair"][0, 0]


def test_region_empty_without_a_pair(variants):
    one = {("crimson", "orange"): variants[("crimson", "orange")],
           ("gold", "purple"): variants[("gold", "purple")]}  # no pair differs in one attribute only
    regions = M.attribute_regions(one, ATTRS)
    assert not regions["hair"].any() and not regions["shirt"].any()
    assert np.isnan(M.condition_error(one[("gold", "purple")], one[("gold", "purple")], regions["hair"]))
    assert M.region_color(one[("gold", "purple")], regions["hair"]).isnan().all()


def test_region_color_is_the_fill_not_the_shade(variants):
    img = variants[("navy", "orange")]
    got = M.region_color(img, box_mask(HAIR_BOX))
    np.testing.assert_allclose(got.numpy(), rgb2lab(np.array(HAIR["navy"]).reshape(1, 1, 3) / 255)[0, 0],
                               atol=1e-6)


def test_value_colors_per_character_and_css_fallback(variants):
    partial = {k: v for k, v in variants.items() if k[0] != "gold"}
    colors = M.value_colors(partial, ATTRS, "hair", values=["crimson", "gold", "navy", "nosuch"])
    css_gold = rgb2lab(np.array(HAIR["gold"]).reshape(1, 1, 3) / 255)[0, 0]
    np.testing.assert_allclose(colors["gold"].numpy(), css_gold)  # not in the ground truth: CSS colour
    assert "nosuch" not in colors
    crimson = rgb2lab(np.array(HAIR["crimson"]).reshape(1, 1, 3) / 255)[0, 0]
    np.testing.assert_allclose(colors["crimson"].numpy(), crimson, atol=1e-6)  # median = the flat fill
    assert M.nearest_value(crimson + [3, -2, 1], colors) == "crimson"
    assert M.nearest_value(css_gold, colors) == "gold"


def test_condition_error_identical_and_swapped(variants):
    target = variants[("crimson", "forestgreen")]
    swapped = variants[("gold", "forestgreen")]
    hair, shirt = box_mask(HAIR_BOX), box_mask(SHIRT_BOX)
    assert M.condition_error(target, target, hair) == 0.0
    assert M.condition_error(swapped, target, hair) > 30
    assert M.condition_error(swapped, target, shirt) == pytest.approx(0.0, abs=1e-9)


def record(pred, hair, shirt, variants, character="c0"):
    return {"pred": pred, "target": variants[(hair, shirt)], "character": character,
            "conditions": {"hair": hair, "shirt": shirt}}


def test_evaluate_identical(variants):
    recs = [record(img, h, s, variants) for (h, s), img in variants.items()]
    out = M.evaluate_images(recs, ATTRS)
    assert out["n"] == 9
    assert out["psnr"] == M.PSNR_CAP  # all identical: finite cap, JSON-safe
    assert out["ssim"] == pytest.approx(1.0)
    assert out["l1"] == 0.0
    assert out["condition_error"] == {"hair": 0.0, "shirt": 0.0}
    assert out["condition_accuracy"] == {"hair": 1.0, "shirt": 1.0}
    json.dumps(out, allow_nan=False)


def test_evaluate_swapped_hair_uses_references(variants):
    # the evaluated set holds one image; the regions come from the references
    pred = variants[("gold", "orange")]
    recs = [record(pred, "crimson", "orange", variants)]
    out = M.evaluate_images(recs, ATTRS, references={"c0": variants})
    assert out["condition_accuracy"] == {"hair": 0.0, "shirt": 1.0}
    assert out["condition_error"]["hair"] > 30
    assert out["condition_error"]["shirt"] == pytest.approx(0.0, abs=1e-9)
    assert math.isfinite(out["psnr"]) and out["psnr"] < 20
    # without references a single image defines no region: nothing judged, reported as None
    alone = M.evaluate_images(recs, ATTRS)
    assert alone["condition_accuracy"] == {"hair": None, "shirt": None}
    assert alone["condition_error"] == {"hair": None, "shirt": None}
    json.dumps(alone, allow_nan=False)


def test_evaluate_noise_and_darker_shade_keep_accuracy(variants):
    rng = np.random.default_rng(0)
    recs = []
    for (h, s), img in variants.items():
        pred = np.clip(img * 0.8 + rng.normal(0, 0.03, img.shape), 0, 1)
        recs.append(record(pred, h, s, variants))
    out = M.evaluate_images(recs, ATTRS, references={"c0": variants})
    assert out["condition_accuracy"] == {"hair": 1.0, "shirt": 1.0}
    assert 0 < out["condition_error"]["hair"] < 30
    assert out["ssim"] < 1.0 and math.isfinite(out["psnr"])


def test_evaluate_accepts_objects_and_several_characters(variants):
    class Rec:
        def __init__(self, pred, target, character, conditions):
            self.pred, self.target, self.character, self.conditions = pred, target, character, conditions

    other = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in variants.items()}  # mirrored character
    recs = [Rec(other[("navy", "purple")], other[("navy", "purple")], "c1",
                {"hair": "navy", "shirt": "purple"}),
            Rec(variants[("navy", "purple")], variants[("gold", "purple")], "c0",
                {"hair": "gold", "shirt": "purple"})]
    out = M.evaluate_images(recs, ATTRS, references={"c0": variants, "c1": other})
    assert out["n"] == 2
    assert out["condition_accuracy"] == {"hair": 0.5, "shirt": 1.0}
    assert out["psnr"] < 100  # mean over the finite value only


def test_prebuilt_references_score_the_same(variants):
    rng = np.random.default_rng(1)
    recs = [record(np.clip(img * 0.9 + rng.normal(0, 0.02, img.shape), 0, 1), h, s, variants)
            for (h, s), img in variants.items()]
    refs = M.References.build({"c0": variants}, ATTRS)
    assert set(refs.regions["c0"]) == {"hair", "shirt"}
    assert M.evaluate_images(recs, ATTRS, refs) == M.evaluate_images(recs, ATTRS, {"c0": variants})
    with pytest.raises(ValueError, match="no character 'c9'"):
        M.evaluate_images([record(variants[("gold", "orange")], "gold", "orange", variants, "c9")], ATTRS, refs)


def _uint8_records(variants, device):
    """Noisy predictions as uint8 tensors on `device`, as `evaluate.generate_records` makes them."""
    rng = np.random.default_rng(2)
    recs = []
    for (h, s), img in variants.items():
        pred = np.clip(img * 0.85 + rng.normal(0, 0.04, img.shape), 0, 1)
        u8 = [torch.from_numpy((x * 255).round().astype(np.uint8)).to(device) for x in (pred, img)]
        recs.append({"pred": u8[0], "target": u8[1], "character": "c0", "conditions": {"hair": h, "shirt": s}})
    return recs


def scores_on(device: str) -> dict:
    """The synthetic character and the compared pairs scored on `device` (run by the gpu test in a
    subprocess that sees the GPU)."""
    variants = {(h, s): draw(h, s) for h in HAIR for s in SHIRT}
    refs = M.References.build({"c0": {k: (v * 255).round().astype(np.uint8) for k, v in variants.items()}},
                              ATTRS, device=device)
    result = M.evaluate_images(_uint8_records(variants, device), ATTRS, refs)
    pairs = [[torch.from_numpy((x * 255).round().astype(np.uint8)).to(device) for x in pair]
             for pair in _pairs_to_compare()]
    result["pairs"] = [[M.psnr(p, t), M.ssim(p, t), M.l1(p, t)] for p, t in pairs]
    result["dtype"] = str(M.to_image(pairs[0][0]).dtype)
    result["regions_device"] = str(refs.regions["c0"]["hair"].device)
    return result


@pytest.mark.gpu
def test_cuda_float32_matches_cpu_float64(gpu_env):
    code = ("import json, sys; sys.path.insert(0, 'tests'); import test_metrics as T; "
            "print(json.dumps({d: T.scores_on(d) for d in ('cpu', 'cuda')}))")
    done = subprocess.run([sys.executable, "-c", code], env=gpu_env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    cpu, cuda = got["cpu"], got["cuda"]
    assert (cpu["dtype"], cuda["dtype"]) == ("torch.float64", "torch.float32")
    assert cuda["regions_device"].startswith("cuda")
    assert cuda["psnr"] == pytest.approx(cpu["psnr"], abs=1e-3)
    assert cuda["ssim"] == pytest.approx(cpu["ssim"], abs=1e-4)
    assert cuda["l1"] == pytest.approx(cpu["l1"], abs=1e-6)
    assert cuda["condition_error"] == pytest.approx(cpu["condition_error"], abs=1e-3)
    assert cuda["condition_accuracy"] == cpu["condition_accuracy"]
    np.testing.assert_allclose(cuda["pairs"], cpu["pairs"], atol=1e-4)
