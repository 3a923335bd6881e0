"""Any picture of one digit -> the 28x28 uint8 digit an MNIST model expects: one code path for all.

MNIST digits are white ink on black, fitted into 20x20 keeping their aspect ratio and placed in
28x28 with their centre of mass in the middle; a photo or a drawing is none of that, and a plain
resize (`naive_resize`, kept for comparison) scores near chance. `to_mnist` does what MNIST did:
EXIF orientation, transparency onto white (black under white strokes), grayscale; the background
estimated at low resolution (an opening/closing wider than any stroke: it follows uneven lighting)
and removed, dark ink as relative darkness (robust to shadows); polarity from the side with the
thin features (ties: the border's median, light = paper); ink by Otsu's threshold (and at least 4
noise sigmas and 24 levels); in a photo, ruled lines and a grid taken out where no stroke crosses
them (`without_ruled_lines`); specks and edge clutter dropped by connected components; contrast
scaled so background is 0 and typical ink 255, anti-aliased edges kept; hairlines thickened to
~2.5 px at the 20 px scale; cropped, longest side to 20 px (LANCZOS), centre of mass at (14, 14).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from .components import components

WORK_SIDE = 512  # the working resolution's longest side: ample for a 20 px digit, fast on a CPU
BG_SIDE = 64  # the background is estimated on an image this small
BG_KERNEL = 0.22  # opening/closing width, as a fraction of the image: wider than any stroke
MIN_CONTRAST = 24.0  # ink must stand this far (0..255) above the background
KEEP_FRACTION = 0.05  # connected components lighter than this share of the largest are specks
GRID = 128  # speck detection works on a grid of at most this many cells a side
FLAT = 2.0  # a background whose pixels all lie within this of its level is flat (no photo)
MIN_INK_SIDE = 0.04  # a digit spans at least this fraction of the image's longest side (and 6 px)
BOX, FRAME = 20, 28
STRONG_INK = 2.5 * MIN_CONTRAST  # a mark's darkest part stands this far out, or it is a speck of the paper
SHARP = STRONG_INK / 6  # levels a pixel: ink's edge rises this steeply at least (a shadow's, ~5 times less)
NOISY = MIN_CONTRAST  # pixel noise (levels, one sigma) as strong as the faintest ink: nothing can stand out
BLANK = "no digit found (the image is blank, or shows only paper: ruled lines, a grid, shadows, texture)"
NOISE = "no digit found (the image looks like noise: no ink stands out from it)"
DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "F")  # Pillow's modes of more than 8 bits per pixel
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def load_image(path: str | Path | BinaryIO, max_pixels: int = 16_000_000, name: str | None = None) -> Image.Image:
    """The image in a file (or a binary file object, e.g. an upload's bytes in BytesIO), decoded (a GIF's
    first frame), EXIF orientation applied. A DataError naming the file (or `name`) if it is not an
    image, truncated, corrupt, or over `max_pixels` (checked from the header, before decoding:
    decompression bombs are refused)."""
    if isinstance(path, (str, Path)):
        path = Path(path)
        label = name or str(path)
    else:
        label = name or "image"
    # The size is checked from the header, before decoding. (Pillow itself refuses images over
    # twice its MAX_IMAGE_PIXELS in open(); no warnings filter here: it would not be thread-safe.)
    if Image.MAX_IMAGE_PIXELS is not None:  # Pillow's own limit, above which it would only warn
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DataError(
                    f"{label}: {width}x{height} image is too large ({width * height:,} pixels, "
                    f"limit {max_pixels:,}): refusing a possible decompression bomb"
                )
            image.seek(0)
            image.load()
            return _upright(image)  # a copy: the file is closed on return
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise DataError(f"{label}: {(e.strerror or 'unreadable').lower()}") from None
    except UnidentifiedImageError:
        raise DataError(f"{label}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise DataError(f"{label}: refusing a possible decompression bomb ({e})") from None
    except _DECODE_ERRORS as e:
        raise DataError(f"{label}: unreadable image (truncated or corrupt: {e})") from None


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation tag says (a copy); unreadable EXIF is ignored."""
    try:
        return ImageOps.exif_transpose(image)
    except (*_DECODE_ERRORS, AttributeError):
        return image.copy()


def preprocess_file(path: str | Path, max_pixels: int = 16_000_000) -> torch.Tensor:
    """load_image + to_mnist: (28, 28) uint8; every failure a DataError naming the file."""
    return to_mnist(load_image(path, max_pixels), source=str(path))


def naive_resize(image: Image.Image) -> torch.Tensor:
    """For comparison only: grayscale + resize to 28x28, no inversion, no cropping or centring."""
    small = image.convert("L").resize((FRAME, FRAME), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(small, dtype=np.uint8).copy())


def to_mnist(image: Image.Image, *, source: str = "image") -> torch.Tensor:
    """A picture of one digit -> (28, 28) uint8, MNIST-style; DataError("<source>: no digit found ...")."""
    return torch.from_numpy(centred_digit(ink_map(_shrink_flat(working_gray(image, source)), source)))


def working_gray(image: Image.Image, source: str = "image", side: int = WORK_SIDE) -> np.ndarray:
    """The image upright (EXIF), in grayscale, its longest side at most `side`: (h, w) float32 in 0..255."""
    try:
        gray = _grayscale(_upright(image))
    except (ValueError, OSError) as e:
        raise DataError(f"{source}: cannot read a {image.mode} image as grayscale ({e})") from None
    if min(gray.shape) < 2:
        raise DataError(f"{source}: {BLANK}")
    if max(gray.shape) > side:
        gray = _scaled(gray, side, Image.Resampling.BOX)
    return gray


def centred_digit(ink: np.ndarray) -> np.ndarray:
    """Ink (0 = background) -> the MNIST digit: cropped, longest side 20 px, centre of mass at (14, 14);
    (28, 28) uint8."""
    return _place(_fit(ink))


def boxed_digit(ink: np.ndarray) -> np.ndarray:
    """Ink drawn at a higher resolution (0 = background) -> (28, 28) uint8 as MNIST's digits were made: cropped,
    the longest side averaged down to 20 px (no sharpening and no thickening: few faint pixels, as MNIST's
    strokes have), the centre of mass at (14, 14)."""
    return _place(np.clip(_scaled(_inked(ink), BOX, Image.Resampling.BOX), 0.0, 255.0))


def _flat_level(gray: np.ndarray) -> float | None:
    """The background's level when it is perfectly flat (a canvas, a clean scan), else None."""
    border_pixels = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    border = float(np.median(border_pixels))
    if np.abs(border_pixels - border).max() <= FLAT and (np.abs(gray - border) <= FLAT).mean() >= 0.5:
        return border
    return None


def _shrink_flat(gray: np.ndarray) -> np.ndarray:
    """A drawing on a flat background, scaled down so its ink spans about 4x the final 20 px.

    The web page's 280 px canvas becomes ~80 px: every later step runs on 12x fewer pixels,
    and 4 working pixels per output pixel keep the strokes' anti-aliasing. Photos are left as they are.
    """
    level = _flat_level(gray)
    if level is None:
        return gray
    rows, cols = np.nonzero(np.abs(gray - level) > FLAT)
    if len(rows) == 0:
        return gray
    extent = max(int(rows.max() - rows.min()), int(cols.max() - cols.min())) + 1
    factor = 4 * BOX / extent
    if factor >= 0.8:
        return gray
    h, w = gray.shape
    return _resize(gray, (max(2, round(w * factor)), max(2, round(h * factor))), Image.Resampling.BOX)


def stretch_to_8bit(image: Image.Image) -> np.ndarray:
    """A one-channel image of any depth (16-bit, 32-bit, float) as (H, W) float32 from 0 (its darkest
    pixel) to 255 (its lightest): how digitlab reads, and draws, images deeper than 8 bits."""
    a = np.asarray(image.convert("F"), dtype=np.float32)
    stretched: np.ndarray = (a - a.min()) * (255.0 / max(float(np.ptp(a)), 1e-6))
    return stretched


def _grayscale(image: Image.Image) -> np.ndarray:
    """(H, W) float32 in 0..255; transparency flattened onto white (onto black if that shows more)."""
    if image.mode in DEEP_MODES:  # 16-bit and float images: stretch to 0..255
        return stretch_to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(rgba.convert("L"), dtype=np.float32)
        on_white: np.ndarray = gray * alpha + 255.0 * (1.0 - alpha)
        if np.ptp(on_white) < MIN_CONTRAST and np.ptp(alpha) >= MIN_CONTRAST / 255:
            on_black: np.ndarray = gray * alpha  # white strokes on a transparent canvas: only black shows them
            return on_black
        return on_white
    return np.asarray(image.convert("L"), dtype=np.float32)


def _resize(a: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize(size, resample), dtype=np.float32)


def _max(a: np.ndarray, k: int) -> np.ndarray:
    """The k x k maximum of a 2-D array, its edges repeated outwards (as PIL's MaxFilter): separable,
    two passes of k, where PIL's rank filter sorts k * k values a pixel (20x slower at k = 15)."""
    rows: np.ndarray = sliding_window_view(np.pad(a, k // 2, mode="edge"), k, axis=0).max(-1)
    out: np.ndarray = sliding_window_view(rows, k, axis=1).max(-1)
    return out


def _min(a: np.ndarray, k: int) -> np.ndarray:
    """The k x k minimum, as `_max`."""
    out: np.ndarray = -_max(-a, k)
    return out


def _median(a: np.ndarray, k: int) -> np.ndarray:
    """The k x k median (k odd), its edges repeated outwards (as PIL's MedianFilter)."""
    windows = sliding_window_view(np.pad(a, k // 2, mode="edge"), (k, k)).reshape(*a.shape, k * k)
    out: np.ndarray = np.partition(windows, k * k // 2, axis=-1)[..., k * k // 2]
    return out


def _dilated(mask: np.ndarray) -> np.ndarray:
    """A boolean mask grown by one pixel in all 8 directions (a 3 x 3 maximum)."""
    out = np.pad(mask, 1)
    out = out[:-2] | out[1:-1] | out[2:]
    grown: np.ndarray = out[:, :-2] | out[:, 1:-1] | out[:, 2:]
    return grown


def ink_map(gray: np.ndarray, source: str, min_ink: float = MIN_INK_SIDE) -> np.ndarray:
    """Working-resolution image with ink 0..255 on a 0 background (specks removed); min_ink: a digit
    spans at least this fraction of the image's longest side (smaller for the digits of a long number)."""
    h, w = gray.shape
    flat_level = _flat_level(gray)
    border = (
        flat_level
        if flat_level is not None
        else float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    )
    if flat_level is not None:
        # A perfectly flat background (a canvas drawing, a clean scan): it is the border's level
        # everywhere and there is no noise to model; skips the rank filters, most of the time.
        dark_ink = border > 127.5
        background: np.floating[Any] | np.ndarray = np.float32(border)
        gain = 255.0 / max(border, 16.0) if dark_ink else np.float32(1.0)
        d = (background - gray) * gain if dark_ink else gray - background
        sigma: np.floating[Any] | np.ndarray = np.float32(0.0)
    else:
        small = _scaled(gray, BG_SIDE, Image.Resampling.BOX) if max(h, w) > BG_SIDE else gray
        k = max(3, int(BG_KERNEL * max(small.shape)) // 2 * 2 + 1)
        local = small - _median(small, k)  # thin features of either polarity
        bright, dark = float(np.clip(local, 0, None).sum()), float(np.clip(-local, 0, None).sum())
        dark_ink = dark > bright if max(bright, dark) >= 1.1 * min(bright, dark) else border > 127.5  # tie: paper?
        closed = _min(_max(small, k), k) if dark_ink else _max(_min(small, k), k)  # closing or opening
        coarse = _scaled(closed, max(2, 2 * max(small.shape) // k), Image.Resampling.BOX)  # smoothed
        background = _resize(coarse, (w, h), Image.Resampling.BILINEAR)
        gain = 255.0 / np.maximum(background, 16.0) if dark_ink else np.float32(1.0)
        d = (background - gray) * gain if dark_ink else gray - background  # dark ink: relative darkness,
        noise = 1.4826 * float(np.median(np.abs(np.diff(gray, axis=1)))) / math.sqrt(2)  # levels, one sigma
        sigma = noise * gain
    median = float(np.median(d))  # so that the same ink reads the same in shadow and in light
    photo = flat_level is None  # paper has lines, edges and shadows; a drawing's canvas has none
    candidate = (d > max(_otsu(d), median + MIN_CONTRAST)) & (d > median + 4 * sigma)
    mask = _select(without_ruled_lines(candidate) if photo else candidate, d, min_ink, photo)
    if mask is None:
        raise DataError(f"{source}: {NOISE if photo and noise > NOISY else BLANK}")
    low = (float(np.median(d[~mask])) if (~mask).any() else median) + 2.5 * float(np.median(sigma))
    high = max(float(np.median(d[mask])), low + MIN_CONTRAST)
    out = np.clip((d - low) / (high - low), 0.0, 1.0) * 255.0
    if not (out[mask] > 0).any():
        raise DataError(f"{source}: {BLANK}")
    near = _dilated(mask)  # keep the anti-aliased rim
    return np.where(near, out, 0.0).astype(np.float32)


RULED_SPAN = 0.6  # a ruled line's ink covers at least this fraction of the page's width (or height)
RULED_TILT = 3.0  # degrees either way that a photographed page's lines may lean
RULED_THICK = 0.012  # of the image's side: thicker bands are strokes, not a ruled line


def without_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """The ink mask less its ruled lines (and a grid's, and a margin's): long straight bands across most
    of the page, found by their projection along a few tilts. A band's pixels are dropped where no ink
    lies just above and below it, so a stroke that crosses the line keeps its ink and stays whole."""
    rows_done = _without_lines(mask)
    both: np.ndarray = _without_lines(rows_done.T).T  # then the columns (a margin, a grid's verticals)
    return both


def _without_lines(mask: np.ndarray) -> np.ndarray:
    """without_ruled_lines for the lines that run along the rows (left to right)."""
    h, w = mask.shape
    if mask.any(axis=0).mean() < RULED_SPAN:  # a line across the page puts ink in most columns
        return mask
    ys, xs = np.nonzero(mask)
    best: tuple[int, np.ndarray, np.ndarray] | None = None
    for tilt in np.linspace(-RULED_TILT, RULED_TILT, 13):
        shift = np.round(np.arange(w) * math.tan(math.radians(tilt))).astype(np.int64)  # (w,) rows down
        counts = np.bincount(ys - shift[xs] + w, minlength=h + 2 * w)  # ink along each leaning row
        score = int(counts[counts >= RULED_SPAN * w].sum())
        if score and (best is None or score > best[0]):
            best = (score, shift, counts)
    if best is None:
        return mask
    _, shift, counts = best
    # a leaning row is inside the page for fewer columns near its corners: its line counts there too
    starts, ends = np.bincount(w - shift, minlength=h + 2 * w + 1), np.bincount(h + w - shift, minlength=h + 2 * w + 1)
    visible = np.cumsum(starts - ends)[: h + 2 * w]  # columns of each leaning row inside the page
    lines = np.nonzero(counts >= RULED_SPAN * np.maximum(visible, RULED_SPAN * w / 4))[0]
    thick = max(1, round(RULED_THICK * max(h, w)))
    out: np.ndarray = mask.copy()
    columns = np.arange(w)
    for band in np.split(lines, np.nonzero(np.diff(lines) > 1)[0] + 1):  # adjacent rows: one band
        top, bottom = int(band[0]) - 1, int(band[-1]) + 1  # the band and its rim, in page-level rows
        if bottom - top + 1 > thick + 2:
            continue
        above = _at(mask, top - 2 - w + shift, columns)  # 2 rows off: past the line's anti-aliased rim
        below = _at(mask, bottom + 2 - w + shift, columns)
        free = ~(above | below)  # (w,): columns where nothing crosses the band
        for row in range(top, bottom + 1):
            y = row - w + shift  # (w,)
            inside = (y >= 0) & (y < h) & free
            out[y[inside], columns[inside]] = False
    return out


def _at(mask: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """mask[y, x] for each column, False outside the image."""
    inside = (y >= 0) & (y < mask.shape[0])
    found = np.zeros(len(x), bool)
    found[inside] = mask[y[inside], x[inside]]
    return found


def _otsu(d: np.ndarray) -> float:
    counts, edges = np.histogram(d, bins=256)
    w0, m0 = np.cumsum(counts), np.cumsum(counts * (edges[:-1] + edges[1:]) / 2)
    w1 = w0[-1] - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num(w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2)
    return float(edges[1 + int(np.argmax(between))])


def _select(mask: np.ndarray, weight: np.ndarray, min_ink: float, photo: bool = True) -> np.ndarray | None:
    """The digit's part of the ink mask (None: no digit). 8-connected components on a grid of at most
    GRID cells a side: those under KEEP_FRACTION of the heaviest, or whose darkest part is under
    STRONG_INK, are specks; in a photo, those whose edges rise slower than SHARP are shadows, and
    those that run from one edge to the opposite one are ruled lines, a grid or the page's edge; when
    one big enough to be a digit lies inside the frame, those touching the edge (a table, the page's
    edge) are dropped."""
    h, w = mask.shape
    f = max(1, math.ceil(max(h, w) / GRID))
    H, W = -(-h // f), -(-w // f)
    pad = ((0, H * f - h), (0, W * f - w))
    cells = cast(np.ndarray, np.pad(mask, pad).reshape(H, f, W, f).any(axis=(1, 3)))  # (H, W): not a scalar
    labels = components(cells).ravel()
    n = H * W + 1

    def by_cell(values: np.ndarray) -> np.ndarray:  # (h, w) -> (H, f, W, f), 0 outside the mask
        return cast(np.ndarray, np.pad(np.where(mask, values, 0.0), pad).reshape(H, f, W, f))

    def component_max(values: np.ndarray) -> np.ndarray:  # (h, w) -> (n,): the largest in each component
        top = np.zeros(n)
        np.maximum.at(top, labels, by_cell(values).max(axis=(1, 3)).ravel())
        return top

    mass = np.bincount(labels, by_cell(weight).sum(axis=(1, 3)).ravel(), n)
    rows, cols = np.divmod(np.arange(H * W), W)
    lo, hi = np.full((2, n), n), np.full((2, n), -1)
    for i, coord in enumerate((rows, cols)):
        np.minimum.at(lo[i], labels, coord)
        np.maximum.at(hi[i], labels, coord)
    extent = (hi - lo + 1).max(0) * f
    grid, edge = labels.reshape(H, W), np.zeros(n, bool)
    edge[np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])] = True
    mass[0] = 0.0
    mass[component_max(weight) < STRONG_INK] = 0.0
    if photo:
        across = np.intersect1d(grid[0], grid[-1]), np.intersect1d(grid[:, 0], grid[:, -1])
        mass[np.concatenate(across)] = 0.0
        gy, gx = np.gradient(_box5(weight))  # smoothed: the paper's pixel noise has no steep edges
        mass[component_max(np.hypot(gx, gy)) < SHARP] = 0.0
    big = extent >= max(6.0, min_ink * max(h, w))
    if (big & ~edge & (mass > 0)).any():
        mass[edge] = 0.0
    keep = (mass > 0) & (mass >= KEEP_FRACTION * mass.max())
    if not (keep & big).any():
        return None
    selected: np.ndarray = mask & np.repeat(np.repeat(keep[grid], f, 0), f, 1)[:h, :w]
    return selected


def _box5(a: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 5x5 neighbourhood (edges repeated), same shape."""
    padded = np.pad(a.astype(np.float32), 2, mode="edge")
    summed = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0))), 0), 1)  # summed-area table
    h, w = a.shape
    return (summed[5 : 5 + h, 5 : 5 + w] - summed[:h, 5 : 5 + w] - summed[5 : 5 + h, :w] + summed[:h, :w]) / 25


def _inked(ink: np.ndarray) -> np.ndarray:
    """The ink's bounding box (0 = background; at least one pixel of ink)."""
    rows, cols = np.nonzero(ink > 0)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _fit(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, thicken hairlines, scale the longest side to 20 px: (h, w) float 0..255."""
    fine = _scaled(_inked(ink), 4 * BOX)  # at 4x the output scale, stroke widths are measured in quarter pixels
    solid = fine > 127.5
    edge = solid & _dilated(~solid)  # inked pixels beside a blank one (the image's edge repeated outwards)
    width = 2.0 * solid.sum() / max(1, edge.sum()) / 4  # output pixels: area / half the perimeter
    if width < 1.8:  # a hairline (a pen on a big page): thicken it to about 2.5 px
        k = int(round((2.5 - width) * 4)) // 2 * 2 + 1  # noqa: RUF046 (numpy 1.x rounds to a float)
        fine = _max(np.pad(fine, k // 2), k)
    fitted: np.ndarray = np.clip(_scaled(fine, BOX), 0.0, 255.0)
    return fitted


def _scaled(a: np.ndarray, side: int, resample: Image.Resampling = Image.Resampling.LANCZOS) -> np.ndarray:
    """Resized so that its longest side is `side`, keeping the aspect ratio."""
    h, w = a.shape
    return _resize(a, (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w)))), resample)


def _place(patch: np.ndarray) -> np.ndarray:
    """The patch in 28x28, its centre of mass at (14, 14) by a sub-pixel shift, clipped within the frame."""
    h, w = patch.shape
    total = float(patch.sum()) or 1.0
    top = min(max(FRAME / 2 - float((patch.sum(1) * np.arange(h)).sum()) / total, 0.0), FRAME - h)
    left = min(max(FRAME / 2 - float((patch.sum(0) * np.arange(w)).sum()) / total, 0.0), FRAME - w)
    padded = np.pad(patch.astype(np.float32), 2)  # zeros around: PIL would repeat the edge pixels
    frame = Image.fromarray(padded).transform(
        (FRAME, FRAME), Image.Transform.AFFINE, (1, 0, 2 - left, 0, 1, 2 - top), Image.Resampling.BILINEAR
    )
    placed: np.ndarray = np.rint(np.clip(np.asarray(frame), 0, 255)).astype(np.uint8)
    return placed
