"""One way to say which part of an image to look at, for pictures, pixel tables and the CLI.

A crop is a (rows, cols) pair of slices. `resolve_crop` accepts a name ("top-left", "centre",
"top", ...), the book's "ROWS,COLS" text ("4:15,4:22" is `im3[4:15, 4:22]`), a slice pair, or
None for the whole image. Names are halves and quarters of the image's shape (28x28: 14 pixels).
"""

from __future__ import annotations

from ..errors import DigitlabError

Crop = tuple[slice, slice]
WHOLE: Crop = (slice(None), slice(None))

# name -> (rows, cols) as fractions of the side, in quarters: "centre" is the middle half both ways
_QUARTERS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "top-left": ((0, 2), (0, 2)),
    "top-right": ((0, 2), (2, 4)),
    "bottom-left": ((2, 4), (0, 2)),
    "bottom-right": ((2, 4), (2, 4)),
    "centre": ((1, 3), (1, 3)),
    "center": ((1, 3), (1, 3)),
    "top": ((0, 2), (0, 4)),
    "bottom": ((2, 4), (0, 4)),
    "left": ((0, 4), (0, 2)),
    "right": ((0, 4), (2, 4)),
}
CROP_NAMES: tuple[str, ...] = tuple(_QUARTERS)
CROP_HELP = "a name (" + ", ".join(CROP_NAMES) + ") or ROWS,COLS like 4:15,4:22 (the book's im3[4:15, 4:22])"


def _key(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")  # "Top Left" and "top_left" too


def _named(name: str, shape: tuple[int, ...]) -> Crop:
    (r0, r1), (c0, c1) = _QUARTERS[name]
    h, w = shape
    # quarter q of a side of n pixels starts at pixel q * n // 4 (28: 0, 7, 14, 21, 28)
    return slice(r0 * h // 4, r1 * h // 4), slice(c0 * w // 4, c1 * w // 4)


def _parse(text: str) -> Crop:
    try:
        rows, cols = text.split(",")
        return tuple(
            slice(*[int(v) if v.strip() else None for v in part.split(":")])  # type: ignore[return-value]
            for part in (rows, cols)
        )
    except (ValueError, TypeError):
        raise DigitlabError(f"bad crop {text!r}: write {CROP_HELP}") from None


def resolve_crop(crop: str | Crop | None, shape: tuple[int, ...] = (28, 28)) -> Crop:
    """A name, "ROWS,COLS", a (rows, cols) slice pair or None (the whole image) -> (rows, cols) slices.

    shape: the (H, W) of the image the crop is for; names are halves and quarters of it.
    Raises DigitlabError for an unknown name, bad text, or a crop with no pixels in `shape`.
    """
    if crop is None or (isinstance(crop, str) and not crop.strip()):
        return WHOLE
    if isinstance(crop, str):
        key = _key(crop)
        resolved = _named(key, shape) if key in _QUARTERS else _parse(crop)
    elif isinstance(crop, tuple) and len(crop) == 2 and all(isinstance(s, slice) for s in crop):
        resolved = crop
    else:
        raise DigitlabError(f"bad crop {crop!r}: write {CROP_HELP}, or pass a (rows, cols) pair of slices")
    if any(len(range(*s.indices(n))) == 0 for s, n in zip(resolved, shape)):
        raise DigitlabError(f"crop {crop!r} has no pixels in a {shape[0]}x{shape[1]} image")
    return resolved


def crop_ranges(crop: str | Crop | None, shape: tuple[int, ...]) -> tuple[range, range]:
    """The row and column indices a crop keeps in an image of `shape`."""
    rows, cols = resolve_crop(crop, shape)
    return range(*rows.indices(shape[0])), range(*cols.indices(shape[1]))


def describe_crop(crop: str | Crop | None, shape: tuple[int, ...] = (28, 28)) -> str:
    """Words for a caption: "rows 7-20, columns 7-20" (inclusive, as a reader counts them)."""
    rows, cols = crop_ranges(crop, shape)
    if len(rows) == shape[0] and len(cols) == shape[1]:
        return "the whole image"

    def span(r: range) -> str:
        return f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0])

    words = f"rows {span(rows)}, columns {span(cols)}"
    return f"{_key(crop)}: {words}" if isinstance(crop, str) and _key(crop) in _QUARTERS else words
