"""`digitlab predict` on pictures of numbers: read digit by digit, with --number or when several digits
are found (and said so), in text and JSON; a single digit as before; bad pictures one line each."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from digitlab.cli import main


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, clear_digits, number_picture):
    folder = tmp_path_factory.mktemp("numbers")
    year, year_boxes = number_picture(["2026"], clear_digits)
    year.save(folder / "year.jpg", quality=92)
    seven, seven_boxes = number_picture(["7"], clear_digits)
    seven.save(folder / "seven.jpg", quality=92)
    return folder, {"year.jpg": year_boxes, "seven.jpg": seven_boxes}


def _close(box, truth, tolerance: int = 4) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(box, truth))


def test_a_number_is_read_and_the_output_says_why(capsys, digit_cnn, pictures):
    folder, truth = pictures
    assert main(["predict", str(digit_cnn), str(folder / "year.jpg"), str(folder / "seven.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(maxsplit=1) == [str(folder / "year.jpg"), "2026   (read as a number: 4 digits found)"]
    for line, label, box in zip(lines[1:5], "2026", truth["year.jpg"]):
        fields = line.split()
        assert fields[0] == label and 0.5 < float(fields[1]) <= 1 and fields[2] == "box"
        assert _close([int(v) for v in fields[3].split(",")], box)
    assert lines[5].split()[:2] == [str(folder / "seven.jpg"), "7"] and len(lines) == 6  # one digit: as before


def test_json_with_number_reads_even_one_digit_as_a_number(capsys, digit_cnn, pictures):
    folder, truth = pictures
    assert main(["predict", str(digit_cnn), str(folder), "--number", "--json", "--top-k", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == []
    seven, year = report["predictions"]  # the folder's files in order
    assert seven["number"] == "7" and seven["read_as_number"] == "--number" and "label" not in seven
    assert year["number"] == "2026" and year["read_as_number"] == "--number"
    assert [d["label"] for d in year["digits"]] == list("2026") and [d["line"] for d in year["digits"]] == [0] * 4
    assert all(_close(d["box"], box) for d, box in zip(year["digits"], truth["year.jpg"]))
    assert _close(seven["digits"][0]["box"], truth["seven.jpg"][0])


def test_show_draws_a_row_per_digit_of_a_number(capsys, digit_cnn, pictures, tmp_path):
    folder, _ = pictures
    one, five = tmp_path / "one.png", tmp_path / "five.png"
    assert main(["predict", str(digit_cnn), str(folder / "seven.jpg"), "--show", str(one), "--quiet"]) == 0
    assert main(["predict", str(digit_cnn), str(folder), "--show", str(five), "--quiet"]) == 0
    capsys.readouterr()
    with Image.open(one) as a, Image.open(five) as b:
        assert b.height > 4 * a.height and a.width == b.width  # 1 row, then 1 + 4 rows


def test_too_many_digits_and_a_strip_are_one_line_each(capsys, digit_cnn, pictures, tmp_path):
    folder, _ = pictures
    many = Image.new("L", (2000, 1000), 255)
    pen = ImageDraw.Draw(many)
    for row in range(10):
        for col in range(20):
            pen.line([(50 + col * 95, 30 + row * 95), (75 + col * 95, 90 + row * 95)], fill=0, width=8)
    many.save(tmp_path / "many.png")
    Image.new("L", (10_000, 1), 255).save(tmp_path / "strip.png")
    paths = [str(tmp_path / "many.png"), str(tmp_path / "strip.png"), str(folder / "year.jpg")]
    assert main(["predict", str(digit_cnn), *paths]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{folder / 'year.jpg'}  2026")  # the others still read
    errors = captured.err.strip().splitlines()
    too_many = "200 digits found (limit 64): crop the picture to the number"
    assert errors[0] == f"digitlab: {tmp_path / 'many.png'}: {too_many}"
    assert errors[1] == f"digitlab: {tmp_path / 'strip.png'}: a 10000x1 image is too thin to hold a digit"
    assert "Traceback" not in captured.err
