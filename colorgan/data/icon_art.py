"""The drawing behind the built-in icon set: characters, their outlines and their colourings.

Everything is drawn once per character at a supersampled size into a region-label map and an ink
(outline) layer; a colouring is then just a palette lookup with the SAME ink composited on top, so
sketch and colourings align to the pixel. Downsampling is a box average over the supersample
(exact coverage, no ringing). Coordinates are fractions of the image, so any size from 32 to
512 px draws the same picture.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter

from colorgan.errors import DataError

# Five colours per attribute, pairwise CIEDE2000 >= 41, none near black, white or a skin tone.
HAIR_COLOURS = ("crimson", "gold", "blue", "darkgreen", "deepskyblue")
SHIRT_COLOURS = ("darkslateblue", "darkturquoise", "olive", "orangered", "violet")
HAIR_STYLES = ("short", "long", "bun", "spiky", "bob", "ponytail", "curly")
SHIRT_STYLES = ("t-shirt", "collar", "v-neck", "hoodie", "tank-top")
MOUTHS = ("smile", "grin", "neutral")
EXTRAS = ((False, False), (True, False), (False, True), (True, True))  # (glasses, freckles)
SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96),
              (160, 102, 70), (120, 76, 50), (250, 208, 180), (180, 120, 84))
# 7, 5, 3 and 4 are pairwise coprime, so character i's styles (i % 7, i % 5, i % 3, i % 4) never
# repeat (Chinese remainder theorem) and neighbours differ in every feature.
MAX_CHARACTERS = len(HAIR_STYLES) * len(SHIRT_STYLES) * len(MOUTHS) * len(EXTRAS)
MIN_SIZE, MAX_SIZE = 32, 512

BG, SKIN, NECK, HAIR, SHIRT, EYE, MOUTH, TIE, BLUSH = range(9)
SHADED = 16  # fill index of a label's shade tone: label + SHADED
FIXED = {BG: (255, 255, 255), EYE: (255, 255, 255), MOUTH: (196, 72, 86), TIE: (236, 236, 242)}


@dataclass(frozen=True)
class Character:
    hair: str
    shirt: str
    mouth: str
    glasses: bool
    freckles: bool
    skin: tuple[int, int, int]


def make_characters(count: int, seed: int = 0) -> list[Character]:
    """`count` different characters; the seed shuffles which style goes with which."""
    if not 1 <= count <= MAX_CHARACTERS:
        raise DataError(f"icons: characters must be 1..{MAX_CHARACTERS} (style combinations), got {count}")
    rng = random.Random(seed)
    hairs, shirts, mouths, extras, skins = (
        rng.sample(options, len(options))
        for options in (HAIR_STYLES, SHIRT_STYLES, MOUTHS, EXTRAS, SKIN_TONES)
    )
    return [Character(hairs[i % 7], shirts[i % 5], mouths[i % 3], *extras[i % 4], skins[i % len(skins)])
            for i in range(count)]


def _quad(p0, c, p1, n: int = 14) -> list[tuple[float, float]]:
    """Points on the quadratic Bezier curve p0 -> p1 pulled towards c."""
    return [((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * c[0] + t * t * p1[0],
             (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * c[1] + t * t * p1[1])
            for t in (i / n for i in range(n + 1))]


def _mirror(points):
    return [(1 - x, y) for x, y in points]


class _Canvas:
    """A label map and an ink layer at supersampled resolution, addressed in image fractions."""

    def __init__(self, size: int) -> None:
        self.ss = 4 if size <= 128 else 2
        self.s = size * self.ss
        self.width = max(0.018 * self.s, 1.1 * self.ss)  # outline width in supersampled pixels
        self.sigma = self.width / 1.28  # blur whose 90% level lies `width` inside an edge
        self.pad = int(3 * self.sigma) + 2  # room so shapes leaving the frame get no outline there
        side = self.s + 2 * self.pad
        self.labels = np.zeros((side, side), np.uint8)
        self.ink = Image.new("L", (side, side), 0)

    def _xy(self, points):
        return [(x * self.s + self.pad, y * self.s + self.pad) for x, y in points]

    def _box(self, cx, cy, rx, ry):
        return [(cx - rx) * self.s + self.pad, (cy - ry) * self.s + self.pad,
                (cx + rx) * self.s + self.pad, (cy + ry) * self.s + self.pad]

    def fill(self, label: int, *shapes) -> None:
        """Paint the union of `shapes` (ellipses `(cx, cy, rx, ry)` or point lists) over what is
        there, hiding the ink below, and outline the union's edge just inside it. Blush is the
        exception: colour only, no line, nothing hidden (it is not part of the line art)."""
        mask = Image.new("L", self.ink.size, 0)
        draw = ImageDraw.Draw(mask)
        for shape in shapes:
            if isinstance(shape, tuple):
                draw.ellipse(self._box(*shape), fill=255)
            else:
                draw.polygon(self._xy(shape), fill=255)
        self.labels[np.asarray(mask) > 0] = label
        if label == BLUSH:
            return
        self.ink.paste(0, mask=mask)
        inner = mask.filter(ImageFilter.GaussianBlur(self.sigma)).point(lambda v: 255 if v >= 230 else 0)
        self.ink = ImageChops.lighter(self.ink, ImageChops.subtract(mask, inner))

    def line(self, points, weight: float = 1.0) -> None:
        """A stroke with round ends through `points`."""
        width = self.width * weight
        xy = self._xy(points)
        draw = ImageDraw.Draw(self.ink)
        draw.line(xy, fill=255, width=max(1, round(width)), joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)

    def dot(self, cx, cy, rx, ry=None, ink: bool = True) -> None:
        box = self._box(cx, cy, rx, rx if ry is None else ry)
        ImageDraw.Draw(self.ink).ellipse(box, fill=255 if ink else 0)

    def fill_map(self) -> np.ndarray:
        """Labels, with the shaded parts moved to `label + SHADED` (light from the upper left)."""
        lab = self.labels
        d = max(1, round(0.035 * self.s))
        shade = np.zeros(lab.shape, bool)
        for label in (SKIN, NECK, HAIR, SHIRT):
            region = lab == label
            shade |= region & ~_shift(region, d, d)
        skin = (lab == SKIN) | (lab == NECK)
        shade |= skin & _shift(lab == HAIR, -d, 0)  # shadow cast by the fringe
        shade |= (lab == NECK) & _shift(lab == SKIN, -2 * d, 0)  # under the chin
        return lab + SHADED * shade.astype(np.uint8)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """b[y, x] = a[y + dy, x + dx], edges extended."""
    h, w = a.shape
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="edge")
    return padded[abs(dy) + dy: abs(dy) + dy + h, abs(dx) + dx: abs(dx) + dx + w]


# --- the drawing: back to front -------------------------------------------------------------

HEAD = (0.5, 0.43, 0.19, 0.21)
SHOULDER_Y = 0.745


def _head_outline(n: int = 72):
    cx, cy, rx, ry = HEAD
    pts = []
    for i in range(n):
        t = 2 * np.pi * i / n
        narrow = 1 - 0.16 * max(0.0, np.sin(t)) ** 2  # a softer chin than an ellipse
        pts.append((cx + rx * np.cos(t) * narrow, cy + ry * np.sin(t)))
    return pts


def _body():
    left = [(0.06, 1.2), (0.07, 0.95)] + _quad((0.08, 0.88), (0.12, SHOULDER_Y), (0.34, SHOULDER_Y))[1:]
    return left + _mirror(left)[::-1]


def _cap(style: str):
    """The hair on top of the head: outer silhouette over the crown, fringe across the brow."""
    cx, cy, rx, ry = HEAD
    orx, ory, ocy = rx + 0.03, ry + 0.035, cy - 0.01
    side_y = {"long": 0.78, "bob": 0.63, "curly": 0.52}.get(style, 0.44)
    inner = rx - 0.025 if style in ("long", "bob") else rx - 0.01
    lo = np.arcsin(min(1.0, (min(side_y, 0.5) - ocy) / ory))
    outer = []
    for i in range(61):
        t = np.pi - lo + (np.pi + 2 * lo) * i / 60
        bump = {"spiky": 0.16 * (1 - abs(i % 8 - 4) / 4) * (0.15 < i / 60 < 0.85),
                "curly": 0.09 * abs(np.sin(i * np.pi / 5))}.get(style, 0.0)
        outer.append((cx + orx * (1 + bump) * np.cos(t), ocy + ory * (1 + bump) * np.sin(t)))
    if side_y > 0.5:  # hair hanging down past the face, ending in a point (long) or blunt
        tip = 0.05 if style == "long" else 0.0
        outer = ([(cx - (orx + inner) / 2, side_y + tip), (cx - orx - 0.01, side_y)] + outer
                 + [(cx + orx + 0.01, side_y), (cx + (orx + inner) / 2, side_y + tip)])
    fringe = {
        "short": [(0.66, 0.33), (0.6, 0.3), (0.56, 0.35), (0.5, 0.29), (0.44, 0.34), (0.4, 0.29),
                  (0.34, 0.36)],
        "long": [(0.65, 0.36), (0.6, 0.3), (0.53, 0.35), (0.5, 0.28), (0.46, 0.35), (0.38, 0.3),
                 (0.35, 0.37)],
        "bun": _quad((0.67, 0.36), (0.52, 0.24), (0.36, 0.33)),
        "spiky": [(0.67, 0.38), (0.63, 0.3), (0.6, 0.37), (0.55, 0.29), (0.5, 0.37), (0.45, 0.29),
                  (0.4, 0.37), (0.36, 0.3), (0.33, 0.38)],
        "bob": _quad((0.67, 0.35), (0.5, 0.33), (0.33, 0.35)),
        "ponytail": ([(0.67, 0.35)] + _quad((0.64, 0.28), (0.5, 0.31), (0.4, 0.36))
                     + [(0.36, 0.3), (0.34, 0.37)]),
        "curly": [(0.67 - 0.068 * (k + j / 6), 0.31 + 0.04 * np.sin(np.pi * j / 6))
                  for k in range(5) for j in range(7)],
    }[style]
    right_in = [(cx + inner, side_y), (cx + inner, fringe[0][1])]
    left_in = [(cx - inner, fringe[-1][1]), (cx - inner, side_y)]
    return outer + right_in + fringe + left_in


def _hair_back(c: _Canvas, style: str) -> None:
    if style == "long":
        c.fill(HAIR, [(0.27, 0.4), (0.25, 0.92), (0.5, 0.96), (0.75, 0.92), (0.73, 0.4)])
    elif style == "bob":
        c.fill(HAIR, [(0.3, 0.4), (0.3, 0.63), (0.7, 0.63), (0.7, 0.4)])
    elif style == "ponytail":
        tail = _quad((0.62, 0.22), (0.86, 0.22), (0.84, 0.5)) + _quad((0.82, 0.66), (0.8, 0.4), (0.66, 0.3))
        c.fill(HAIR, tail)
        c.fill(TIE, (0.69, 0.26, 0.035, 0.04))
    elif style == "bun":
        c.fill(HAIR, (0.5, 0.17, 0.09, 0.075))
        c.line(_quad((0.45, 0.15), (0.5, 0.12), (0.55, 0.16)), 0.8)
        c.line(_quad((0.46, 0.19), (0.52, 0.2), (0.54, 0.17)), 0.8)


def _shirt(c: _Canvas, style: str) -> None:
    neck = [(0.445, 0.5), (0.555, 0.5), (0.56, 0.8), (0.44, 0.8)]
    if style == "tank-top":
        c.fill(NECK, _body(), neck)
        side = [(0.26, 1.2), (0.27, 0.93)] + _quad((0.3, 0.84), (0.33, 0.8), (0.335, SHOULDER_Y))
        half_scoop = _quad((0.4, SHOULDER_Y), (0.42, 0.87), (0.5, 0.87))
        scoop = half_scoop + _mirror(half_scoop)[::-1]
        c.fill(SHIRT, side + scoop + _mirror(side)[::-1])
        return
    if style == "hoodie":
        c.fill(SHIRT, (0.5, 0.7, 0.23, 0.13))
    c.fill(SHIRT, _body())
    c.line(_quad((0.21, 0.79), (0.2, 0.9), (0.22, 1.02)), 0.8)  # sleeve seams
    c.line(_quad((0.79, 0.79), (0.8, 0.9), (0.78, 1.02)), 0.8)
    if style == "t-shirt":
        c.fill(NECK, neck, (0.5, SHOULDER_Y + 0.005, 0.085, 0.06))
        c.line(_quad((0.405, 0.75), (0.5, 0.85), (0.595, 0.75)), 0.8)
    elif style == "v-neck":
        c.fill(NECK, neck, [(0.425, SHOULDER_Y), (0.575, SHOULDER_Y), (0.5, 0.87)])
        c.line([(0.41, 0.75), (0.5, 0.9), (0.59, 0.75)], 0.8)
    elif style == "collar":
        c.fill(NECK, neck, [(0.44, SHOULDER_Y), (0.56, SHOULDER_Y), (0.5, 0.83)])
        flap = [(0.5, 0.83), (0.43, 0.72), (0.37, 0.77), (0.41, 0.87)]
        c.fill(SHIRT, flap)
        c.fill(SHIRT, _mirror(flap))
        c.line([(0.5, 0.84), (0.5, 1.02)], 0.8)
        for y in (0.9, 0.97):
            c.dot(0.52, y, 0.01)
    elif style == "hoodie":
        c.fill(SHIRT, (0.5, 0.77, 0.17, 0.06))
        c.fill(NECK, neck, (0.5, 0.77, 0.08, 0.035))
        for x in (0.46, 0.54):
            c.line([(x, 0.8), (x + (x - 0.5) * 0.3, 0.92)], 0.9)
            c.dot(x + (x - 0.5) * 0.3, 0.93, 0.012)


def _face(c: _Canvas, who: Character) -> None:
    cx, cy, rx, ry = HEAD
    for side in (-1, 1):  # ears, then the head over them
        x = cx + side * rx
        c.fill(SKIN, (x, 0.47, 0.035, 0.05))
        c.line(_quad((x + side * 0.012, 0.45), (x + side * 0.02, 0.48), (x + side * 0.004, 0.5)), 0.7)
    c.fill(SKIN, _head_outline())
    for side in (-1, 1):
        ex = cx + side * 0.077
        c.fill(BLUSH, (cx + side * 0.11, 0.535, 0.03, 0.016))
        c.fill(EYE, (ex, 0.465, 0.037, 0.045))
        c.dot(ex + side * 0.004, 0.472, 0.026, 0.034)
        c.dot(ex - 0.009, 0.458, 0.01, ink=False)
        c.line(_quad((ex - side * 0.035, 0.405), (ex, 0.39), (ex + side * 0.04, 0.407)), 1.3)
        if who.freckles:
            for dx, dy in ((-0.02, 0.0), (0.0, 0.012), (0.02, -0.002), (0.01, -0.012)):
                c.dot(cx + side * 0.11 + dx, 0.525 + dy, 0.006)
        if who.glasses:
            c.line([(ex + side * 0.058, 0.45), (cx + side * (rx - 0.005), 0.44)], 0.9)
    if who.glasses:
        for side in (-1, 1):
            c.line([(cx + side * 0.077 + 0.058 * np.cos(t), 0.465 + 0.052 * np.sin(t))
                    for t in np.linspace(0, 2 * np.pi, 40)], 0.9)
        c.line(_quad((0.48, 0.46), (0.5, 0.445), (0.52, 0.46)), 0.9)
    c.line([(0.503, 0.505), (0.494, 0.53), (0.507, 0.533)], 0.8)
    if who.mouth == "smile":
        c.line(_quad((0.46, 0.57), (0.5, 0.605), (0.54, 0.57)))
    elif who.mouth == "neutral":
        c.line(_quad((0.475, 0.585), (0.5, 0.59), (0.525, 0.585)))
    else:
        c.fill(MOUTH, [(0.455, 0.565)] + _quad((0.46, 0.58), (0.5, 0.635), (0.54, 0.58)) + [(0.545, 0.565)])


def _draw(who: Character, size: int) -> _Canvas:
    c = _Canvas(size)
    _hair_back(c, who.hair)
    _shirt(c, who.shirt)
    _face(c, who)
    c.fill(HAIR, _cap(who.hair))
    if who.hair == "curly":
        for x, y in ((0.38, 0.24), (0.5, 0.21), (0.62, 0.24), (0.32, 0.42), (0.68, 0.42)):
            c.line(_quad((x - 0.02, y), (x, y - 0.03), (x + 0.02, y)), 0.7)
    return c


# --- rendering and files ---------------------------------------------------------------------


def _palette(who: Character, hair: str, shirt: str) -> np.ndarray:
    colours = dict(FIXED)
    colours.update({SKIN: who.skin, NECK: who.skin, HAIR: ImageColor.getrgb(hair)[:3],
                    SHIRT: ImageColor.getrgb(shirt)[:3]})
    colours[BLUSH] = tuple(round(0.65 * s + 0.35 * p) for s, p in zip(who.skin, (255, 105, 120)))
    lut = np.zeros((2 * SHADED, 3), np.uint8)
    for label, rgb in colours.items():
        lut[label] = rgb
        darker = 0.84 if label in (SKIN, NECK, BLUSH) else 0.72
        lut[label + SHADED] = [round(v * darker) for v in rgb]
    return lut


def _finish(c: _Canvas, pixels: np.ndarray, mode: str) -> Image.Image:
    """Ink on top, supersample margin off, box-averaged down to the final size."""
    pixels = pixels.copy()
    pixels[np.asarray(c.ink) > 0] = 0
    img = Image.fromarray(pixels, mode).crop((c.pad, c.pad, c.pad + c.s, c.pad + c.s))
    return img.reduce(c.ss)


def render(who: Character, size: int) -> tuple[Image.Image, dict[tuple[str, str], Image.Image]]:
    """One character's sketch (L) and its colourings (RGB) keyed by (hair, shirt)."""
    c = _draw(who, size)
    sketch = _finish(c, np.full(c.labels.shape, 255, np.uint8), "L")
    fills = c.fill_map()
    colored = {(h, s): _finish(c, _palette(who, h, s)[fills], "RGB")
               for h in HAIR_COLOURS for s in SHIRT_COLOURS}
    return sketch, colored
