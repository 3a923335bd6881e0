"""`find_digits` and `read_number`: numbers built from real handwritten digits (the offline mirror's),
drawn as photos with gaps, touching digits, broken strokes, two lines, dots and dashes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.errors import DataError
from digitlab.reading.segment import MAX_DIGITS, find_digits


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.fixture(scope="module")
def predictor(digit_cnn):
    from digitlab.predict.predictor import Predictor

    return Predictor.load(digit_cnn)


def reading(predictor, found) -> str:
    import torch

    return "".join(predictor.predict(torch.stack([d.image for d in found])).labels)


def test_a_spaced_number_is_found_digit_by_digit_in_order(clear_digits, number_picture, predictor):
    photo, truth = number_picture(["2026"], clear_digits)
    found = find_digits(photo)
    assert len(found) == 4 and [d.line for d in found] == [0] * 4
    for digit, box in zip(found, truth):  # left to right, each box on its digit's ink
        assert iou(digit.box, box) > 0.8, (digit.box, box)
        assert digit.image.shape == (28, 28) and digit.image.dtype.is_floating_point is False
    assert reading(predictor, found) == "2026"


def test_every_digit_once_at_several_sizes_and_gaps(clear_digits, number_picture, predictor):
    for height, gap in ((40, 0.15), (90, 0.5), (160, 0.25)):
        photo, truth = number_picture(["0123456789"], clear_digits, height=height, gap=gap, seed=height)
        found = find_digits(photo)
        assert [round(iou(d.box, t), 1) > 0.6 for d, t in zip(found, truth)] == [True] * 10, height
        assert reading(predictor, found) == "0123456789", height


def test_two_lines_are_read_top_to_bottom(clear_digits, number_picture, predictor):
    from digitlab.predict.numbers import read_number

    photo, truth = number_picture(["12", "345"], clear_digits)
    result = read_number(predictor, photo)
    assert [d.line for d in result.digits] == [0, 0, 1, 1, 1]
    assert all(iou(d.box, t) > 0.8 for d, t in zip(result.digits, truth))
    assert result.number == "12 345"
    as_json = result.as_json()
    assert as_json["number"] == "12 345" and [d["label"] for d in as_json["digits"]] == list("12345")
    assert all(0 < d["probability"] <= 1 for d in as_json["digits"])
    assert as_json["digits"][2]["box"] == list(result.digits[2].box)


def test_the_pieces_of_a_broken_digit_are_one_digit(clear_digits, number_picture, predictor):
    from digitlab.reading.components import runs
    from digitlab.reading.preprocessing import ink_map, working_gray

    photo, truth = number_picture(["7050"], clear_digits, broken=frozenset({0, 1, 3}))
    pieces = runs(ink_map(working_gray(photo, side=1024), "x") > 0).count
    assert pieces >= 6  # the cut really broke the strokes: more components than digits
    found = find_digits(photo)
    assert len(found) == 4 and all(iou(d.box, t) > 0.8 for d, t in zip(found, truth))


def test_the_pieces_of_a_digit_split_down_the_middle_are_read_as_one_when_a_model_judges(
    clear_digits, number_picture, template_judge, monkeypatch
):
    import torch

    from digitlab.reading import segment
    from digitlab.reading.components import runs
    from digitlab.reading.preprocessing import ink_map, working_gray

    photo, truth = number_picture(["7050"], clear_digits, split=frozenset({1, 3}))
    assert runs(ink_map(working_gray(photo, side=1024), "x") > 0).count == 6  # each 0 in two halves
    found = find_digits(photo, judge=template_judge)
    assert template_judge.label(torch.stack([d.image for d in found])) == "7050"
    assert all(iou(d.box, t) > 0.8 for d, t in zip(found, truth))
    monkeypatch.setattr(segment, "PIECE_GAP", -1.0)  # no neighbours offered together: each half a digit
    assert len(find_digits(photo, judge=template_judge)) == 6


def test_touching_digits_are_cut_apart(clear_digits, number_picture, predictor):
    from digitlab.predict.numbers import read_number
    from digitlab.reading.components import runs
    from digitlab.reading.preprocessing import ink_map, working_gray

    photo, truth = number_picture(["4203"], clear_digits, gap=0.05, joined=frozenset({0, 2}))
    assert runs(ink_map(working_gray(photo, side=1024), "x") > 0).count == 2  # 42 and 03: two joined pairs
    result = read_number(predictor, photo)  # the model judges the cuts
    assert result.number == "4203"
    assert all(iou(d.box, t) > 0.6 for d, t in zip(result.digits, truth))
    # without a model to judge, a component is cut when it is much wider than high (here: both pairs)
    assert len(find_digits(photo)) == 4


@pytest.fixture(scope="module")
def template_judge(clear_digits, number_picture):
    """A judge that knows the digits drawn: each crop's confidence falls with its L1 distance to the
    nearest of the ten digits as `to_mnist` sees them drawn alone. It tests what find_digits offers
    and how choose picks, apart from any trained model's knife-edge calls (a 2-epoch CNN's whole and
    cut scores of a touching 21 differ by 0.02-0.06 in log probability, and flip between CPUs whose
    kernels round differently). How well a real model reads touching numbers is bench_numbers' figure."""
    import torch

    from digitlab.reading.preprocessing import to_mnist
    from digitlab.reading.readings import Judgement

    names = sorted(clear_digits)
    templates = torch.stack([to_mnist(number_picture([n], clear_digits)[0]) for n in names]).float() / 255

    def judge(digits: torch.Tensor) -> Judgement:
        l1 = ((digits.float() / 255)[:, None] - templates[None]).abs().mean((2, 3))  # (N, 10)
        return Judgement(confidence=torch.exp(-10 * l1.min(1).values))

    def label(digits: torch.Tensor) -> str:
        l1 = ((digits.float() / 255)[:, None] - templates[None]).abs().mean((2, 3))
        return "".join(names[int(i)] for i in l1.argmin(1))

    judge.label = label  # type: ignore[attr-defined]
    return judge


# Not a 31 overlapping by 5%: read whole it is a fair 3 by pixels alone; only a model's "not a digit"
# distance tells it from one digit (readings.choose with a stand-in judge: tests/test_readings.py)
@pytest.mark.parametrize(("pair", "gap"), [("21", -0.05), ("12", -0.05), ("51", -0.05), ("41", 0.0)])
def test_a_touching_pair_with_a_one_is_offered_cut_and_read_as_two_digits(
    clear_digits, number_picture, template_judge, pair, gap
):
    """A 1 drawn touching a digit, tied to it along the baseline: one mark whose 1 lies off the middle,
    outside the even cut's window; find_digits offers the cut columns at local ink minima, and a judge
    that knows the digits picks the cut that separates them (read 2, 62 and 53 before those columns)."""
    import torch

    from digitlab.reading.components import runs
    from digitlab.reading.preprocessing import ink_map, working_gray

    photo, truth = number_picture([pair], clear_digits, gap=gap, joined=frozenset({0}))
    assert runs(ink_map(working_gray(photo, side=1024), "x") > 0).count == 1  # one mark
    found = find_digits(photo, judge=template_judge)
    assert template_judge.label(torch.stack([d.image for d in found])) == pair
    for digit, (x0, _, x1, _) in zip(found, truth):  # each cut part holds its own digit's middle
        assert digit.box[0] <= (x0 + x1) / 2 <= digit.box[2], (digit.box, truth)


def test_a_wide_single_digit_is_not_cut(clear_digits, number_picture, predictor):
    """A 2 written wide (1.3 times wider than high): the model reads it better whole than cut."""
    from digitlab.predict.numbers import read_number
    from digitlab.reading.segment import NO_JUDGE_ASPECT, SPLIT_ASPECT

    ys, xs = np.nonzero(clear_digits["2"] > 30)
    ink = clear_digits["2"][ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    wide = np.asarray(Image.fromarray(ink).resize((round(1.3 * ink.shape[0]), ink.shape[0])))
    photo, (box,) = number_picture(["2"], {"2": wide})
    assert SPLIT_ASPECT < (box[2] - box[0]) / (box[3] - box[1]) < NO_JUDGE_ASPECT
    assert read_number(predictor, photo).number == "2"


def test_dots_and_dashes_are_not_digits(clear_digits, number_picture, predictor):
    photo, truth = number_picture(["12", "34"], clear_digits)
    # one line "12-34.": a dash and a dot drawn between and after the digits of the first line
    one_line = Image.new("RGB", (photo.width * 2 + 200, photo.height // 2 + 40), (205, 201, 194))
    top = photo.crop((0, 0, photo.width, photo.height // 2 + 40))
    second = photo.crop((0, truth[2][1] - 50, photo.width, truth[2][1] - 10 + photo.height // 2))
    one_line.paste(top, (0, 0))
    one_line.paste(second, (photo.width + 100, 0))
    pen = ImageDraw.Draw(one_line)
    y = (truth[0][1] + truth[0][3]) // 2
    pen.line([(photo.width, y), (photo.width + 80, y)], fill=(40, 40, 60), width=9)  # the dash
    pen.ellipse([(2 * photo.width + 120, truth[0][3] - 12), (2 * photo.width + 132, truth[0][3])], fill=(40, 40, 60))
    assert reading(predictor, find_digits(one_line)) == "1234"


def test_boxes_are_in_the_upright_pictures_pixels(clear_digits, number_picture, tmp_path):
    from digitlab.reading.preprocessing import load_image

    photo, truth = number_picture(["2026"], clear_digits)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise, to be shown turned back
    photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.jpg", quality=95, exif=exif.tobytes())
    found = find_digits(load_image(tmp_path / "sideways.jpg"))
    assert len(found) == 4 and all(iou(d.box, t) > 0.8 for d, t in zip(found, truth))


def test_bad_pictures_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"^strip: a 10000x1 image is too thin to hold a digit$"):
        find_digits(Image.new("L", (10_000, 1), 255), source="strip")
    with pytest.raises(DataError, match="no digit found"):
        find_digits(Image.new("L", (400, 300), 255), source="blank")
    many = Image.new("L", (2000, 1000), 255)  # 200 strokes, 20 x 10: far more than a number
    pen = ImageDraw.Draw(many)
    for row in range(10):
        for col in range(20):
            x, y = 50 + col * 95, 30 + row * 95
            pen.line([(x, y), (x + 25, y + 60)], fill=0, width=8)
    with pytest.raises(DataError) as refused:
        find_digits(many, source="grid")
    assert str(refused.value) == f"grid: 200 digits found (limit {MAX_DIGITS}): crop the picture to the number"


def test_a_texture_of_marks_is_refused_before_any_quadratic_work():
    dots = Image.new("L", (2000, 2000), 255)  # 1,600 rings: a texture, not a number
    pen = ImageDraw.Draw(dots)
    for row in range(40):
        for col in range(40):
            pen.ellipse([(20 + col * 49, 20 + row * 49), (52 + col * 49, 52 + row * 49)], outline=0, width=5)
    with pytest.raises(DataError, match=r"^dots: 1,600 separate marks found, not a number \(limit 64 digits\)$"):
        find_digits(dots, source="dots")
