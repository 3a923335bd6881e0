"""`digitlab show`: one digit as a shaded table of pixel values."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.outputs import check_new_file
from ..errors import DataError, DigitlabError
from ..reading.crops import CROP_NAMES, resolve_crop
from .common import Commands, Context, add_command, print_json

if TYPE_CHECKING:  # imported where used: `digitlab --help` does not load torch
    import torch

EXAMPLES = """\
  digitlab show mnist_sample:0                the first training 3
  digitlab show mnist_sample:5 --split valid --crop 4:15,4:22   the book's view of a 3
  digitlab show mnist_sample:0 --crop top-left   a corner: nearly all background (0)
  digitlab show samples/letter_m.png --png table.png   your own 28x28 image, saved as a picture too
  digitlab show ../shared/data/mnist-test:42 --json
"""

MAX_SIDE = 64  # a single image larger than this is not a digit to read pixel by pixel


def add_parser(commands: Commands) -> None:
    parser = add_command(commands, "show", "one digit as a shaded table of its pixel values", EXAMPLES, run)
    parser.add_argument(
        "source",
        metavar="PATH_OR_DATASET[:INDEX]",
        help="an image file, or a dataset name/path with an optional :INDEX (default 0)",
    )
    parser.add_argument("--split", choices=["train", "valid"], default="train", help="which split INDEX counts in")
    parser.add_argument(
        "--crop",
        help="the part to show: a name (" + ", ".join(CROP_NAMES) + ") or ROWS,COLS "
        "like 4:15,4:22, the book's im3[4:15, 4:22] (default: the whole image)",
    )
    parser.add_argument("--png", metavar="OUT", help="also save the table as a PNG picture")
    parser.add_argument("--overwrite", action="store_true", help="let --png replace an existing file")


def _split_index(source: str) -> tuple[str, int | None]:
    match = re.fullmatch(r"(.+):(-?\d+)", source)
    if match and not Path(source).exists():
        return match[1], int(match[2])
    return source, None


def _single_image(path: Path) -> torch.Tensor | None:
    """A lone image file as (H, W) uint8, or None when the path is not one."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if not path.is_file() or path.suffix.lower() in (".gz", ".tgz", ".zip", ".tar", ".npz") or "idx" in path.name:
        return None
    try:
        with Image.open(path) as image:
            if max(image.size) > MAX_SIDE:
                raise DataError(
                    f"{path}: {image.size[0]}x{image.size[1]} is too large to show as numbers (max {MAX_SIDE} pixels "
                    f"a side): `digitlab predict {path} --show out.png` shows the 28x28 a model reads from it, "
                    f"or resize it first (PIL: Image.open(p).resize((28, 28)))"
                )
            return torch.from_numpy(np.asarray(image.convert("L")).copy())
    except UnidentifiedImageError:
        return None
    except OSError as e:
        raise DataError(f"{path}: unreadable image: {e}") from None


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..data.loading import load_dataset
    from ..plots.pixel_text import print_pixels

    resolve_crop(args.crop)  # a bad --crop fails before any data is loaded
    name, index = _split_index(args.source)
    if args.png:  # before any work: never over the source, nor silently over any file
        check_new_file(Path(args.png), "--png", args.overwrite, inputs=[Path(args.source), Path(name)])
    image = _single_image(Path(name).expanduser()) if index is None else None
    if image is not None:
        title, label = Path(name).name, None
    else:
        dataset = load_dataset(name, ctx.settings, ctx.log)
        split = dataset.train if args.split == "train" else dataset.valid
        if split is None:
            raise DigitlabError(f"{name} has no valid split; use --split train")
        index = 0 if index is None else index
        if not -len(split) <= index < len(split):
            raise DigitlabError(f"index {index} is out of range: {args.split} has {len(split):,} images")
        image, label = split.images[index], split.classes[int(split.labels[index])]
        title = f"{name} {args.split}[{index}]: label {label}"
    crop = resolve_crop(args.crop, tuple(image.shape))
    if args.png:
        from ..plots.pixels import plot_pixel_table  # matplotlib: only when drawing

        plot_pixel_table(image, crop, title, path=args.png)
        ctx.log(f"saved {args.png}")
    if args.json:
        rows, cols = crop
        print_json(
            {
                "source": args.source,
                "label": label,
                "shape": list(image.shape),
                "pixels": image[rows, cols].tolist(),
                "png": args.png,
            }
        )
        return 0
    print_pixels(image, crop, title)
    return 0
