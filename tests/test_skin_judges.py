"""tools/skin_judges.py, issue 11's diagnostic: on a character whose scored region is mostly hair that
four tones share (Twemoji's woman-elf, here in the extreme), the median judge cannot tell those four
tones apart, even on the ground truth or skin drawn exactly; pixel by pixel, the skin tells them."""

import importlib.util
from pathlib import Path

import numpy as np

SPEC = importlib.util.spec_from_file_location("skin_judges", Path(__file__).parents[1] / "tools" / "skin_judges.py")
skin_judges = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(skin_judges)

SKIN = {"default": "ffdc5d", "light": "f7dece", "medium-light": "f3d2a2", "medium": "d5ab88",
        "medium-dark": "af7e57", "dark": "7c533e"}
HAIR = {"medium-dark": "60352a", "dark": "0b0200"}  # brown (662113) at the other four, as woman-elf's


def colour(hex_rgb: str) -> np.ndarray:
    return np.array([int(hex_rgb[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)


def elf(tone: str, brown: str = "662113") -> np.ndarray:
    image = np.full((32, 32, 3), 255, dtype=np.uint8)
    image[2:22, 4:28] = colour(HAIR.get(tone, brown))  # 480 hair pixels
    image[22:30, 10:22] = colour(SKIN[tone])  # 96 skin pixels
    return image


def test_the_median_judge_misses_shared_hair_tones_that_the_per_pixel_judge_tells_apart():
    truths = {tone: elf(tone) for tone in skin_judges.TONES}
    drawn = {tone: elf(tone, brown="6b2417") for tone in skin_judges.TONES}  # skin exact, hair a little off
    for images in (truths, drawn):
        hits = skin_judges.judge(truths, images)
        # the four brown-haired tones' reference medians are all the hair's: one of them is found
        assert hits == {"median": 3, "per-pixel": 6}, hits
    darker = {tone: elf(tone)[::-1].copy() for tone in skin_judges.TONES}  # the drawing upside down: misses
    assert skin_judges.judge(truths, darker)["per-pixel"] < 6


def test_a_character_that_no_tone_changes_is_not_judged():
    blank = {tone: np.full((8, 8, 3), 255, dtype=np.uint8) for tone in skin_judges.TONES}
    assert skin_judges.judge(blank, blank) is None
