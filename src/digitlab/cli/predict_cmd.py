"""`digitlab predict`: a saved model reads your own digit photos and drawings."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.defaults import CORRECTIONS_FOLDER as DEFAULT_FOLDER
from ..core.defaults import IMAGE_SUFFIXES
from ..core.outputs import check_new_file
from ..errors import DataError, DigitlabError, check_range
from .common import Commands, Context, add_command, add_device_flag, device_from_args, print_json

if TYPE_CHECKING:  # imported where used: `digitlab --help` does not load torch
    import torch
    from PIL import Image

    from ..predict.lines import LineChecker
    from ..predict.predictor import Predictor

EXAMPLES = """\
  digitlab predict runs/cnn10 samples/seven.jpg            the label and the 3 likeliest classes
  digitlab predict runs/cnn10 samples/photos/ --top-k 1     every image file in a folder (sorted)
  digitlab predict runs/cnn10 'samples/photos/*.jpg' --json  a glob (quoted or not); one JSON object
  digitlab predict runs/cnn10 samples/seven.jpg samples/letter_m.png --show saw.png   beside what the model saw
  digitlab predict runs/cnn10 samples/seven.jpg --correct 7  it was a 7: saved to my-digits/7/ to learn from
  digitlab predict runs/cnn10 samples/meter.jpg --number     "2026": every digit, its box, label and probability
  digitlab predict runs/cnn10 samples/meter.jpg --number --lines runs/lines   checked by a line reader
  digitlab predict runs/cnn10 samples/seven.jpg --correct 7 --keep-photo --corrections ~/digits
(samples/: pictures `make demo` writes, `digitlab data samples`; your own photos work the same way)

Every image is turned into an MNIST digit first (white ink on black, fitted into 20x20, centred
by centre of mass in 28x28): photos and drawings in any colours, sizes and orientations work.
A picture with several digits (a year, a meter reading, lines of a phone number) is read as a
number, and the output says so; --number reads even a single digit that way. Each digit's box is
x0,y0,x1,y1 in the picture's pixels (x1, y1 exclusive), after turning it as its EXIF orientation says.
Probabilities are rounded down to 6 decimals (as `digitlab serve` answers).
The model abstains when the image does not look like a digit or it is not sure ("not sure: 4 or
9?"): the label is then null in --json, with the reason, and the likeliest classes are still listed.
A file that cannot be read (not an image, truncated, too large, blank) is reported and the others
still get answers; the exit code is then 1 (2 for a bad MODEL or no images at all).
--correct LABEL (one image) saves the 28x28 the model saw as CORRECTIONS/LABEL/<id>.png, a dataset
that `digitlab train --data my-digits --init MODEL` fine-tunes the model on."""

SHOW_ROWS = 100  # --show draws at most this many images (a row each)


def add_parser(commands: Commands) -> None:
    parser = add_command(commands, "predict", "predict the digit in your own images with a saved model", EXAMPLES, run)
    parser.add_argument("model_path", metavar="MODEL", type=Path, help="a run folder or its model.json/.safetensors")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files, folders of images, or globs")
    parser.add_argument("--top-k", type=int, default=3, help="how many of the likeliest classes to list (default: 3)")
    parser.add_argument("--show", metavar="OUT.png", help="save each input next to the 28x28 the model saw")
    parser.add_argument("--overwrite", action="store_true", help="let --show replace an existing file")
    parser.add_argument(
        "--correct", metavar="LABEL", help="the digit really is LABEL: save what the model saw to the corrections"
    )
    parser.add_argument(
        "--corrections",
        metavar="DIR",
        type=Path,
        default=DEFAULT_FOLDER,
        help=f"folder of corrections, <label>/<id>.png (default: ./{DEFAULT_FOLDER})",
    )
    parser.add_argument("--keep-photo", action="store_true", help="with --correct: also keep the original image")
    parser.add_argument(
        "--number", action="store_true", help="read each picture as a number (the default when it holds several digits)"
    )
    parser.add_argument(
        "--lines",
        metavar="DIR",
        type=Path,
        help="a line reader (`digitlab train --model line-reader --out DIR`) that reads each line of a number "
        "whole and checks the digits: where it sees another count of digits (touching digits, say) the line is "
        "cut again where it sees them; a digit still read otherwise shows the digit likeliest to both readers, "
        "marked not sure",
    )
    add_device_flag(parser, "the model runs")


def expand_images(specs: list[str]) -> tuple[list[Path], list[dict[str, str]]]:
    """Files, folders (their image files, sorted) and globs -> (image paths in order, problems)."""
    paths: list[Path] = []
    problems: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            paths.append(path)

    def add_folder(spec: str, folder: Path) -> None:
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            problems.append({"path": spec, "error": "a folder without image files"})
        for p in found:
            add(p)

    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            add_folder(spec, path)
        elif path.exists():
            add(path)
        elif any(c in spec for c in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                problems.append({"path": spec, "error": "no files match"})
            for match in map(Path, matches):
                if match.is_dir():
                    add_folder(str(match), match)
                else:
                    add(match)
        else:
            problems.append({"path": spec, "error": "no such file or folder"})
    return paths, problems


def _model_files(model: Path) -> list[Path]:
    """The files a model argument reads: a run folder's contents, or a .json/.safetensors pair."""
    if model.is_dir():
        return [p for p in model.rglob("*") if p.is_file()]
    return [model.with_suffix(".json"), model.with_suffix(".safetensors"), model]


def _message(error: DataError, path: Path) -> str:
    """The error without the "PATH: " the library puts first (the path has its own field)."""
    text = str(error)
    return text[len(str(path)) + 2 :] if text.startswith(f"{path}: ") else text


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..predict.predictor import Predictor

    check_range("--top-k", args.top_k, 1, 1000)  # more than the classes lists them all
    show = Path(args.show).expanduser() if args.show else None
    if args.keep_photo and args.correct is None:
        raise DigitlabError("--keep-photo keeps the photo of a correction: give --correct LABEL too")
    predictor = Predictor.load(args.model_path, device_from_args(args, ctx.log, "predicting"))
    checker = None
    if args.lines is not None:
        from ..predict.lines import LineChecker

        checker = LineChecker.load(args.lines)
    if args.correct is not None:
        from ..data.corrections import check_corrections_folder, check_label

        check_label(args.correct, predictor.classes)
        check_corrections_folder(args.corrections)
    paths, errors = expand_images(args.images)
    if not paths:
        raise DigitlabError("no images to read: " + "; ".join(f"{e['path']}: {e['error']}" for e in errors))
    if show is not None:  # before any image is read: never over a picture given, nor silently over any file
        check_new_file(show, "--show", args.overwrite, inputs=[*paths, *_model_files(args.model_path)])
    if args.correct is not None and (len(paths) != 1 or errors):
        raise DigitlabError(f"--correct {args.correct} names the digit of one image: give exactly one image file")
    read = Reads()
    for path in paths:
        error = _read_one(args, predictor, path, read, show is not None, checker)
        if error is not None:
            errors.append({"path": str(path), "error": error})
    shown = _predicted(predictor, read.digits, args.top_k)  # --show's rows: single digits and numbers' digits
    # the answers in the order of the paths: a number's digits (shown with --show) are one answer
    order = {str(path): i for i, path in enumerate(paths)}
    predictions = sorted(
        [p for p in shown if p["path"] in order] + list(read.numbers.values()), key=lambda p: order[p["path"]]
    )
    report: dict[str, Any] = {"predictions": predictions, "errors": errors}
    if args.correct is not None and read.digits:
        report["correction"] = _save_correction(args, read.digits[0], predictions[0], ctx)
    if args.json:
        print_json(report)
    else:
        _print(predictions, errors)
    if show is not None:
        _save_show(show, read.thumbnails, [digit for _, digit in read.digits], shown, ctx)
    if errors:
        ctx.log(f"{len(errors)} of {len(errors) + len(predictions)} inputs could not be read")
    return 1 if errors else 0


@dataclass
class Reads:
    """What the pictures gave: single digits (and a number's digits, for --show), numbers, thumbnails."""

    digits: list[tuple[Path, torch.Tensor]] = field(default_factory=list)  # (path, (28, 28) uint8)
    numbers: dict[Path, dict[str, Any]] = field(default_factory=dict)  # pictures read as numbers, by path
    thumbnails: list[Image.Image] = field(default_factory=list)  # --show's pictures, a row each


def _read_one(
    args: argparse.Namespace, predictor: Predictor, path: Path, read: Reads, show: bool, lines: LineChecker | None
) -> str | None:
    """Read one picture as a digit or a number into `read` (lines: a line reader checks a number's lines);
    the error in words if it cannot be read."""
    from ..predict.numbers import read_if_number
    from ..reading.preprocessing import load_image, to_mnist

    try:
        image = load_image(path)
        reading = read_if_number(predictor, image, source=str(path), number=args.number, k=args.top_k, lines=lines)
        digit = to_mnist(image, source=str(path)) if reading is None else None
    except DataError as e:
        return _message(e, path)
    if show:
        from ..plots.predictions import thumbnail
    if reading is None:
        assert digit is not None
        read.digits.append((path, digit))
        if show and len(read.thumbnails) < SHOW_ROWS:
            read.thumbnails.append(thumbnail(image))
        return None
    if args.correct is not None:
        raise DigitlabError(f"--correct {args.correct}: {path} holds {len(reading.digits)} digits, not one")
    why = "--number" if args.number else f"{len(reading.digits)} digits found"
    read.numbers[path] = {"path": str(path), **reading.as_json(), "read_as_number": why}
    if show:  # a row per digit: its box in the picture, and the 28x28 the model saw
        for i, found_digit in enumerate(reading.digits[: SHOW_ROWS - len(read.thumbnails)]):
            read.thumbnails.append(thumbnail(image.crop(found_digit.box)))
            read.digits.append((Path(f"{path} [{i}]"), found_digit.image))
    return None


def _predicted(predictor: Predictor, digits: list[tuple[Path, torch.Tensor]], k: int) -> list[dict[str, Any]]:
    """Each single digit's answer: {"path", "label", "reason", "top_k"}."""
    if not digits:
        return []
    import torch

    found = predictor.predict(torch.stack([digit for _, digit in digits]), k=k)
    return [
        {"path": str(path), "label": label, "reason": reason, "top_k": [[name, p] for name, p in top_k]}
        for (path, _), label, reason, top_k in zip(digits, found.answers, found.reasons or [], found.top_k)
    ]


def _save_correction(
    args: argparse.Namespace, read: tuple[Path, torch.Tensor], prediction: dict[str, Any], ctx: Context
) -> dict[str, str]:
    """--correct LABEL: the 28x28 the model saw (and with --keep-photo the photo) into the corrections folder."""
    from ..data.corrections import save_correction

    path, digit = read
    photo = path.read_bytes() if args.keep_photo else None
    saved = save_correction(args.corrections, digit, args.correct, photo, path.suffix)
    said = prediction["reason"] or prediction["label"]
    ctx.log(f"saved the correction {args.correct} as {saved} (the model said {said})")
    return {"label": args.correct, "path": str(saved)}


def _print(predictions: list[dict[str, Any]], errors: list[dict[str, str]]) -> None:
    width = max((len(p["path"]) for p in predictions), default=0)
    for p in predictions:
        if "number" in p:
            checked = ""
            if "lines" in p:
                checked = (
                    ", the line reader agrees"
                    if p["agreed"]
                    else ", the line reader reads " + " ".join(line["line_reader"] or "-" for line in p["lines"])
                )
            print(f"{p['path']:<{width}}  {p['number']}   (read as a number: {p['read_as_number']}{checked})")
            for d in p["digits"]:
                note = f"  ({d['reason']})" if d["reason"] else ""
                print(f"    {d['label']}  {d['probability']:.3f}  box {','.join(map(str, d['box']))}{note}")
            continue
        ranked = "  ".join(f"{label} {probability:.3f}" for label, probability in p["top_k"])
        print(f"{p['path']:<{width}}  {p['reason'] or p['label']}   ({ranked})")
    for problem in errors:  # not status lines: shown with --quiet too
        print(f"digitlab: {problem['path']}: {problem['error']}", file=sys.stderr)


def _save_show(
    out: Path,
    thumbnails: list[Image.Image],
    digits: list[torch.Tensor],
    predictions: list[dict[str, Any]],
    ctx: Context,
) -> None:
    """One PNG, a row per image: the input as given, and the 28x28 digit the model read."""
    if not thumbnails:
        ctx.log(f"--show: no image could be read, {out} not written")
        return
    from ..plots.predictions import plot_predictions

    shown = predictions[: len(thumbnails)]
    plot_predictions(
        thumbnails,
        digits[: len(thumbnails)],
        [p["path"] for p in shown],
        [p["reason"] or p["label"] for p in shown],
        [p["top_k"][0][1] for p in shown],  # the label comes first in top_k
        path=out,
    )
    if len(predictions) > len(thumbnails):
        ctx.log(f"--show: drew the first {len(thumbnails)} of {len(predictions)} images")
    ctx.log(f"saved {out}")
