"""Reading whole numbers with a line reader checking the cut digits (`predict --number --lines`), beside
cutting alone, the line reader alone and Tesseract, on the same photos as bench/bench_numbers.py.

The photos: bench_numbers' 4-digit numbers of official test digits (../shared/data/mnist-test; benchmarks
only), made from the same seeds, so the "cut" column is bench_numbers' string accuracy. For each number:
- cut: `read_number` (digits found, cut where they touch, read by the digit model);
- checked: `read_number(..., lines=LineChecker)`, the number `predict --number --lines` shows; "agreed":
  both readers read the same digits (after re-cutting), "right when agreed": how often they are then right;
  "silent errors": numbers read wrong with no digit marked "not sure" (or otherwise doubted);
- line reader alone: its reading of each line, joined;
- Tesseract 5 (Debian's tesseract-ocr, when installed), one text line (--psm 7), digits only.

    .venv/bin/python bench/bench_line_reader.py MODEL_DIR LINES_DIR [--n 300] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_numbers import GAPS, LENGTH, render_number
from digitlab.data.formats.idx import load_idx_folder
from digitlab.errors import DataError
from digitlab.predict.lines import LineChecker
from digitlab.predict.numbers import read_number
from digitlab.predict.predictor import Predictor
from digitlab.reading.segment import find_page


def tesseract(photo: Image.Image, peer: bool = True) -> str | None:
    """Tesseract's digits in the photo (None when it is not installed or not asked for)."""
    if not peer or shutil.which("tesseract") is None:
        return None
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    command = ["tesseract", "stdin", "stdout", "--psm", "7", "-c", "tessedit_char_whitelist=0123456789"]
    done = subprocess.run(command, input=buffer.getvalue(), capture_output=True, check=False, timeout=60)
    return "".join(ch for ch in done.stdout.decode(errors="replace") if ch.isdigit())


def one(predictor: Predictor, checker: LineChecker, photo: Image.Image, truth: str) -> dict[str, float]:
    """One photo read every way: 1.0 / 0.0 for each measure."""
    try:
        cut = read_number(predictor, photo).number
        started = time.perf_counter()
        checked = read_number(predictor, photo, lines=checker)
        seconds = time.perf_counter() - started
        answer = checked.as_json()
        alone = "".join(r.digits for r in checker.read(find_page(photo, lines=True).lines))
    except DataError:  # no digit found: wrong every way
        return {"cut": 0.0, "checked": 0.0, "agreed": 0.0, "agreed_right": 0.0, "silent": 1.0, "alone": 0.0, "s": 0.0}
    doubted = any(d["reason"] for d in answer["digits"])
    return {
        "cut": float(cut == truth),
        "checked": float(answer["number"] == truth),
        "agreed": float(answer["agreed"]),
        "agreed_right": float(answer["agreed"] and answer["number"] == truth),
        "silent": float(answer["number"] != truth and not doubted),
        "alone": float(alone == truth),
        "s": seconds,
    }


def run(
    predictor: Predictor, checker: LineChecker, test, n: int, seed: int, gaps: tuple[float, float], peer: bool
) -> dict:
    rng = np.random.default_rng(seed)  # the same draws, in the same order, as bench_numbers.run
    totals: dict[str, float] = {}
    right = 0  # Tesseract's exact readings; -1: not run
    for _ in range(n):
        picks = rng.integers(0, len(test), LENGTH)
        truth = "".join(test.classes[int(test.labels[i])] for i in picks)
        photo = render_number([test.images[int(i)].numpy() for i in picks], rng, gaps)
        for key, value in one(predictor, checker, photo, truth).items():
            totals[key] = totals.get(key, 0.0) + value
        peer_reading = tesseract(photo, peer)
        right = -1 if peer_reading is None else right + (peer_reading == truth)
    result = {key: value / n for key, value in totals.items()}
    result["tesseract"] = float("nan") if right < 0 else right / n
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a digit model's run folder")
    parser.add_argument("lines", type=Path, help="a line reader's run folder")
    parser.add_argument("--n", type=int, default=300, help="numbers per seed and gap")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gaps", nargs="+", default=list(GAPS), choices=list(GAPS))
    parser.add_argument("--no-tesseract", action="store_true", help="leave the peer out (most of the time)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictor, checker = Predictor.load(args.model), LineChecker.load(args.lines)
    test = load_idx_folder(Path("../shared/data/mnist-test")).train.with_classes(predictor.classes)
    version = (
        subprocess.run(["tesseract", "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
        if shutil.which("tesseract")
        else "Tesseract not installed"
    )
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}"
    )
    print(f"digit model {args.model}, line reader {args.lines} ({checker.card.get('scores')}); {version}")
    print(f"{args.n} numbers per seed; one thread\n")
    print(
        "| gaps | seed | cut | checked | agreed | right when agreed | silent errors | line reader alone | "
        "Tesseract | ms per number (checked) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.gaps:
        results = [
            run(predictor, checker, test, args.n, seed, GAPS[name], not args.no_tesseract) for seed in args.seeds
        ]
        for label, r in [*zip(map(str, args.seeds), results), ("**median**", None)]:
            if r is None:
                r = {k: statistics.median(x[k] for x in results) for k in results[0]}
            print(
                f"| {name} | {label} | {r['cut']:.3f} | {r['checked']:.3f} | {r['agreed']:.3f} | "
                f"{r['agreed_right'] / max(r['agreed'], 1e-9):.4f} | {r['silent']:.3f} | {r['alone']:.3f} | "
                f"{r['tesseract']:.3f} | {1000 * r['s']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
