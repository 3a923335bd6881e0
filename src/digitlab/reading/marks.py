"""Marks that are not digits, drawn as a hand draws them: letters, symbols, doodles and scribbles, MNIST-style.

A digit model learns what digits look like from digits alone; nothing tells it what is *not* one, so a
letter often lands confidently on some digit (E -> 8, T -> 7). These marks are what it is shown as
"no digit at all" while it trains (`digitlab.train.outliers`). Each is a few pen strokes in a unit box
(x right, y down; a letter's x-height from 0.4 to 1), every point moved a little, the whole slanted and
stretched, drawn with a pen of random width, then made as MNIST's digits were (`boxed_digit`), so that
only their shapes tell them from the training digits. No font and no file: they are made from a seed,
here, on any machine.

Letters shaped like a digit (O, I, l, S, Z, B, b, G, g, q, D) are left out (DIGIT_LIKE): drawn by hand
they are the digit (an O is a 0), and teaching the model otherwise would cost real digits.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from .preprocessing import boxed_digit

Stroke = list[tuple[float, float]]
CANVAS = 96  # px the marks are drawn at, before boxed_digit averages them down to MNIST's 20 px box
JITTER = 0.035  # each point moves this much (a fraction of the box), as a hand wavers


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> Stroke:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 right, 90 down: y grows downwards)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _bowl_right(top: float, bottom: float) -> Stroke:
    """A bowl to the right of a stem at x = 0, from (0, top) to (0, bottom), reaching x = 0.8: P's and R's."""
    mid, r = (top + bottom) / 2, (bottom - top) / 2
    return [(0, top), *arc(0.8 - r, mid, r, r, -90, 90), (0, bottom)]


CAPITALS: dict[str, list[Stroke]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "C": [arc(0.55, 0.5, 0.45, 0.5, -40, -320)],
    "E": [[(0.9, 0), (0, 0), (0, 1), (0.9, 1)], [(0, 0.5), (0.65, 0.5)]],
    "F": [[(0.9, 0), (0, 0), (0, 1)], [(0, 0.48), (0.65, 0.48)]],
    "H": [[(0, 0), (0, 1)], [(0.8, 0), (0.8, 1)], [(0, 0.5), (0.8, 0.5)]],
    "J": [[(0.3, 0), (0.95, 0)], [(0.7, 0), (0.7, 0.7), *arc(0.4, 0.7, 0.3, 0.3, 0, 180)]],
    "K": [[(0, 0), (0, 1)], [(0.85, 0), (0, 0.58)], [(0.28, 0.4), (0.9, 1)]],
    "L": [[(0, 0), (0, 1), (0.75, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.65), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (0.8, 1), (0.8, 0)]],
    "P": [[(0, 1), *_bowl_right(0, 0.5)]],
    "Q": [arc(0.5, 0.5, 0.45, 0.5, 0, 360, 20), [(0.55, 0.7), (1, 1.1)]],
    "R": [[(0, 1), *_bowl_right(0, 0.5)], [(0.3, 0.5), (0.85, 1)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "U": [[(0, 0), *arc(0.4, 0.6, 0.4, 0.4, 180, 0), (0.8, 0)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
}
SMALL: dict[str, list[Stroke]] = {
    "a": [arc(0.42, 0.72, 0.38, 0.28, 0, 360, 16), [(0.8, 0.42), (0.8, 1)]],
    "a2": [[*arc(0.45, 0.52, 0.3, 0.14, -170, 0), (0.75, 1)], [(0.75, 0.66), *arc(0.45, 0.82, 0.3, 0.16, -90, -330)]],
    "c": [arc(0.5, 0.7, 0.42, 0.3, -40, -320)],
    "d": [arc(0.42, 0.72, 0.38, 0.28, 0, 360, 16), [(0.8, 0), (0.8, 1)]],
    "e": [[(0.1, 0.7), (0.9, 0.7), *arc(0.5, 0.7, 0.4, 0.3, 0, -310)]],
    "f": [[*arc(0.7, 0.2, 0.25, 0.2, -20, -180), (0.45, 1)], [(0.15, 0.45), (0.75, 0.45)]],
    "h": [[(0, 0), (0, 1)], [(0, 0.68), *arc(0.38, 0.68, 0.38, 0.26, 180, 360), (0.76, 1)]],
    "i": [[(0.5, 0.42), (0.5, 1)], [(0.5, 0.12), (0.5, 0.2)]],
    "j": [[(0.6, 0.42), (0.6, 1.05), *arc(0.35, 1.05, 0.25, 0.2, 0, 160)], [(0.6, 0.12), (0.6, 0.2)]],
    "k": [[(0, 0), (0, 1)], [(0.75, 0.4), (0, 0.72)], [(0.28, 0.6), (0.8, 1)]],
    "m": [
        [(0, 0.4), (0, 1)],
        [(0, 0.62), *arc(0.25, 0.62, 0.25, 0.2, 180, 360), (0.5, 1)],
        [(0.5, 0.62), *arc(0.75, 0.62, 0.25, 0.2, 180, 360), (1, 1)],
    ],
    "n": [[(0, 0.4), (0, 1)], [(0, 0.65), *arc(0.38, 0.65, 0.38, 0.23, 180, 360), (0.76, 1)]],
    "p": [[(0, 0.4), (0, 1.35)], arc(0.38, 0.66, 0.38, 0.25, 0, 360, 16)],
    "r": [[(0, 0.4), (0, 1)], [(0, 0.68), *arc(0.42, 0.68, 0.42, 0.25, 180, 300)]],
    "t": [[(0.4, 0), (0.4, 0.85), *arc(0.6, 0.85, 0.2, 0.15, 180, 30)], [(0.1, 0.38), (0.8, 0.38)]],
    "u": [[(0, 0.4), *arc(0.38, 0.75, 0.38, 0.25, 180, 0), (0.76, 0.4)], [(0.76, 0.4), (0.8, 1)]],
    "v": [[(0, 0.4), (0.45, 1), (0.9, 0.4)]],
    "w": [[(0, 0.4), (0.25, 1), (0.5, 0.6), (0.75, 1), (1, 0.4)]],
    "x": [[(0, 0.4), (0.9, 1)], [(0.9, 0.4), (0, 1)]],
    "y": [[(0, 0.4), (0.5, 0.85)], [(0.95, 0.4), (0.3, 1.4)]],
}
SYMBOLS: dict[str, list[Stroke]] = {
    "+": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "=": [[(0, 0.3), (1, 0.3)], [(0, 0.7), (1, 0.7)]],
    "#": [[(0.35, 0), (0.25, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.35), (1, 0.35)], [(0, 0.68), (1, 0.68)]],
    "*": [[(0.5, 0), (0.5, 1)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "%": [arc(0.2, 0.2, 0.18, 0.18, 0, 360), [(0.9, 0), (0.1, 1)], arc(0.8, 0.8, 0.18, 0.18, 0, 360)],
    "&": [[(1, 1), *arc(0.45, 0.22, 0.22, 0.22, 120, -200), (0.1, 0.8), *arc(0.38, 0.78, 0.28, 0.22, 180, 40)]],
    "@": [arc(0.52, 0.52, 0.2, 0.2, 0, 360), [(0.72, 0.35), (0.72, 0.7), *arc(0.5, 0.5, 0.45, 0.45, 30, 320, 20)]],
    "$": [[*arc(0.5, 0.3, 0.35, 0.2, -20, -270), *arc(0.5, 0.7, 0.35, 0.2, -90, 160)], [(0.5, -0.1), (0.5, 1.1)]],
    "?": [[*arc(0.5, 0.25, 0.35, 0.25, -160, 60), (0.5, 0.7)], [(0.5, 0.9), (0.5, 1)]],
    "!": [[(0.5, 0), (0.5, 0.7)], [(0.5, 0.9), (0.5, 1)]],
    ">": [[(0, 0), (1, 0.5), (0, 1)]],
    "<": [[(1, 0), (0, 0.5), (1, 1)]],
    "heart": [[(0.5, 1), (0.05, 0.4), *arc(0.27, 0.3, 0.23, 0.2, 160, 360), *arc(0.73, 0.3, 0.23, 0.2, 180, 380)]],
    "tick": [[(0, 0.6), (0.35, 1), (1, 0)]],
    "arrow": [[(0, 0.5), (1, 0.5)], [(0.7, 0.2), (1, 0.5), (0.7, 0.8)]],
    "star": [[(0.5, 0), (0.8, 1), (0, 0.35), (1, 0.35), (0.2, 1), (0.5, 0)]],
    "triangle": [[(0.5, 0), (1, 1), (0, 1), (0.5, 0)]],
    "square": [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]],
}
DRAWINGS: dict[str, list[Stroke]] = {  # what people doodle where a digit might be
    "face": [
        arc(0.5, 0.5, 0.5, 0.5, 0, 360, 24),
        [(0.33, 0.33), (0.35, 0.37)],
        [(0.65, 0.33), (0.67, 0.37)],
        arc(0.5, 0.58, 0.25, 0.18, 20, 160),
    ],
    "sun": [
        arc(0.5, 0.5, 0.25, 0.25, 0, 360, 16),
        *(
            [(0.5 + 0.33 * math.cos(a), 0.5 + 0.33 * math.sin(a)), (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))]
            for a in np.radians(np.arange(0, 360, 45))
        ),
    ],
    "house": [
        [(0, 0.45), (0.5, 0), (1, 0.45)],
        [(0.1, 0.4), (0.1, 1), (0.9, 1), (0.9, 0.4)],
        [(0.4, 1), (0.4, 0.7), (0.6, 0.7), (0.6, 1)],
    ],
    "spiral": [
        [
            (0.5 + r * math.cos(a), 0.5 + r * math.sin(a))
            for a, r in zip(np.linspace(0, 4 * math.pi, 40), np.linspace(0.05, 0.5, 40))
        ]
    ],
    "flower": [
        arc(0.5, 0.3, 0.12, 0.12, 0, 360),
        *(
            arc(0.5 + 0.22 * math.cos(a), 0.3 + 0.22 * math.sin(a), 0.1, 0.1, 0, 360)
            for a in np.radians(np.arange(0, 360, 72))
        ),
        [(0.5, 0.55), (0.5, 1)],
    ],
    "hatch": [[(0.0, y), (1.0, y + 0.1)] for y in (0.1, 0.4, 0.7)]
    + [[(x, 0.0), (x + 0.1, 1.0)] for x in (0.15, 0.5, 0.85)],
}
SHAPES = {**CAPITALS, **SMALL, **SYMBOLS, **DRAWINGS}  # every mark drawn from a model; scribbles are made afresh
DIGIT_LIKE = frozenset("OoIlSsZzBbGgqD")  # left out of SHAPES: drawn by hand, they are (or pass for) digits


def _scribble(rng: np.random.Generator) -> list[Stroke]:
    """A random pen path: a smooth wandering curve, a loop or a zigzag, 1-3 strokes."""
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(4, 9))  # 4 points at least: fewer draw a 1 or a 7 as often as not
        if rng.random() < 0.5:  # a zigzag through random points
            strokes.append([tuple(p) for p in rng.uniform(0, 1, (n, 2)).tolist()])
        else:  # a curve whose direction turns smoothly
            angle, point, stroke = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 0.8, 2), []
            turn = rng.normal(0, 0.6)
            for _ in range(4 * n):
                stroke.append((float(point[0]), float(point[1])))
                angle += turn + rng.normal(0, 0.3)
                point = point + 0.08 * np.array([math.cos(angle), math.sin(angle)])
            strokes.append(stroke)
    return strokes


def _drawn(strokes: list[Stroke], rng: np.random.Generator) -> np.ndarray:
    """The strokes moved, slanted and stretched at random, drawn with a random pen: (CANVAS, CANVAS) ink."""
    points = [np.asarray(s, dtype=np.float64) for s in strokes]
    slant, stretch = rng.uniform(-0.3, 0.3), rng.uniform(0.75, 1.3)
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(6, 12))
    for p in points:
        p = p + rng.normal(0, JITTER, p.shape)
        x = (p[:, 0] - 0.5) * stretch + slant * (p[:, 1] - 0.5)
        xy = np.stack([x, p[:, 1] - 0.5], 1) * (CANVAS * 0.55) + CANVAS / 2
        draw.line([tuple(v) for v in xy.tolist()], fill=255, width=width, joint="curve")
    return np.asarray(image, dtype=np.float32)


def marks(n: int, seed: int = 0, scribbles: float = 0.25) -> torch.Tensor:
    """n marks that are not digits: (n, 28, 28) uint8, MNIST-style (white ink on black, centred by mass).
    A share `scribbles` are random pen paths, the rest letters, symbols and doodles drawn from SHAPES at random."""
    rng = np.random.default_rng(seed)
    names = sorted(SHAPES)
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        strokes = _scribble(rng) if rng.random() < scribbles else SHAPES[names[int(rng.integers(len(names)))]]
        ink = _drawn(strokes, rng)
        if ink.max() > 0:
            out[i] = boxed_digit(ink)
    return torch.from_numpy(out)
