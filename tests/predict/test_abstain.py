"""Abstaining: "this does not look like a digit" and "not sure: 4 or 9?", calibrated when the model is trained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from digitlab.artifacts.card import Abstention, CardError
from digitlab.artifacts.card_sections import card_from_json
from digitlab.artifacts.serialization import IDEALS, save_ideal_digits
from digitlab.cli import main
from digitlab.errors import DigitlabError
from digitlab.predict.abstain import (
    DEFAULT_MIN_MARGIN,
    ENERGY_TARGET,
    MIN_CALIBRATION,
    NOT_A_DIGIT,
    PIXEL_TARGET,
    TARGET,
    Abstainer,
    calibrate,
    calibrate_model,
    energies,
    pixel_distances,
)
from digitlab.predict.mahalanobis import STATS, ClassStats, fit_stats, outputs_and_features, save_stats
from digitlab.predict.predictor import Predictor
from digitlab.reading.preprocessing import to_mnist

# Letters as strokes (no font needed): polylines in a 100x100 box
STROKES = {
    "A": [[(10, 95), (50, 5), (90, 95)], [(28, 60), (72, 60)]],
    "H": [[(15, 5), (15, 95)], [(85, 5), (85, 95)], [(15, 50), (85, 50)]],
    "K": [[(20, 5), (20, 95)], [(85, 5), (20, 55)], [(40, 40), (85, 95)]],
    "M": [[(10, 95), (10, 5), (50, 60), (90, 5), (90, 95)]],
    "W": [[(5, 5), (28, 95), (50, 35), (72, 95), (95, 5)]],
    "X": [[(10, 5), (90, 95)], [(90, 5), (10, 95)]],
    "E": [[(80, 5), (20, 5), (20, 95), (80, 95)], [(20, 50), (65, 50)]],
    "F": [[(80, 5), (20, 5), (20, 95)], [(20, 50), (65, 50)]],
    "N": [[(15, 95), (15, 5), (85, 95), (85, 5)]],
    "R": [[(20, 95), (20, 5), (70, 5), (80, 25), (70, 45), (20, 45)], [(45, 45), (85, 95)]],
    "Y": [[(10, 5), (50, 50), (90, 5)], [(50, 50), (50, 95)]],
    "V": [[(10, 5), (50, 95), (90, 5)]],
}


def _page(size: int = 200) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (size, size), 255)
    return image, ImageDraw.Draw(image)


def letters(rng: np.random.Generator, copies: int = 4) -> list[Image.Image]:
    out = []
    for strokes in STROKES.values():
        for _ in range(copies):
            image, draw = _page()
            scale, dx, dy, width = (
                rng.uniform(1.2, 1.7),
                rng.uniform(10, 40),
                rng.uniform(10, 40),
                int(rng.integers(8, 16)),
            )
            for line in strokes:
                draw.line([(dx + x * scale, dy + y * scale) for x, y in line], fill=0, width=width, joint="curve")
            out.append(image.rotate(float(rng.uniform(-10, 10)), fillcolor=255))
    return out


def faces(rng: np.random.Generator, n: int = 20) -> list[Image.Image]:
    out = []
    for _ in range(n):
        image, draw = _page()
        r, width = int(rng.integers(55, 90)), int(rng.integers(5, 10))
        draw.ellipse([100 - r, 100 - r, 100 + r, 100 + r], outline=0, width=width)
        for dx in (-r // 3, r // 3):
            draw.ellipse([100 + dx - 7, 100 - r // 3 - 7, 100 + dx + 7, 100 - r // 3 + 7], fill=0)
        draw.arc([100 - r // 2, 100, 100 + r // 2, 100 + r // 2], 20, 160, fill=0, width=width)
        out.append(image)
    return out


def noise(rng: np.random.Generator, n: int = 20) -> list[Image.Image]:
    return [
        Image.fromarray(np.clip(rng.normal(128, 40, (12, 12)), 0, 255).astype(np.uint8)).resize((200, 200))
        for _ in range(n)
    ]


def several(digits: torch.Tensor, rng: np.random.Generator, n: int = 40) -> list[Image.Image]:
    """2-4 of the digits side by side, dark on light, as one photo."""
    out = []
    for _ in range(n):
        row = np.concatenate(
            [255 - digits[int(j)].numpy() for j in rng.integers(0, len(digits), rng.integers(2, 5))], 1
        )
        out.append(Image.fromarray(row).resize((row.shape[1] * 4, 112)))
    return out


def rejected(predictor: Predictor, images: list[Image.Image]) -> float:
    found = predictor.predict(torch.stack([to_mnist(image) for image in images]))
    return sum(answer is None for answer in found.answers) / len(images)


# ---- the pieces -------------------------------------------------------------------------------


def test_distances_grow_away_from_the_class_means():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 4, generator=gen), torch.randn(500, 4, generator=gen) + 6  # two classes, 4 features
    stats = fit_stats(torch.cat([a, b]), torch.cat([torch.zeros(500), torch.ones(500)]).long(), 2)
    assert torch.allclose(stats.means, torch.stack([a.mean(0), b.mean(0)]).double())
    near, between, far = stats.distances(torch.tensor([[6.0, 6, 6, 6], [3.0, 3, 3, 3], [30.0, -30, 0, 0]]))
    assert near < 2 < between < far  # divided by the 4 features: about 1 for a typical member
    pixels = torch.rand(300, 784, generator=gen)  # the linear model's features: a diagonal covariance, 6 KB
    wide = fit_stats(pixels, torch.arange(300) % 3, 3)
    assert wide.precision.shape == (784,) and wide.means.shape == (3, 784)
    assert wide.distances(pixels[:5]).max() < wide.distances(pixels[:5] + 1).min()


def test_calibration_rejects_the_target_share_and_needs_enough_digits():
    gen = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(1000, 10, generator=gen) * 3, 1).double()
    distances = torch.rand(1000, generator=gen).double()
    found = calibrate(probs, distances, "0" * 64, target=0.02)
    assert found.n_valid == 1000 and found.target == 0.02 and found.stats_sha256 == "0" * 64
    assert found.not_a_digit == pytest.approx(0.02, abs=0.002)
    assert found.false_reject == pytest.approx(found.not_a_digit + found.not_sure)
    assert 0.02 <= found.false_reject <= 0.04  # each check rejects 2%, some digits fail both
    few = calibrate(probs[: MIN_CALIBRATION - 1], distances[: MIN_CALIBRATION - 1], "0" * 64)
    assert few.min_margin == DEFAULT_MIN_MARGIN and few.max_distance is None and few.target is None
    assert few.stats_sha256 is None and few.n_valid == MIN_CALIBRATION - 1


def test_the_pixel_distance_rejects_a_little_more_beyond_the_features():
    gen = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(2000, 10, generator=gen) * 3, 1).double()
    features = torch.rand(2000, generator=gen).double()
    pixels = (0.5 * features + 0.5 * torch.rand(2000, generator=gen)).double()  # correlated, as on digits
    alone = calibrate(probs, features, "0" * 64, target=0.01, pixel_target=0)
    both = calibrate(probs, features, "0" * 64, target=0.01, pixels=pixels, ideals_sha256="1" * 64, pixel_target=0.003)
    assert alone.max_pixel_distance is None and alone.ideals_sha256 is None
    assert calibrate(probs, features, "0" * 64, target=0.01, pixels=pixels, pixel_target=0) == alone
    assert both.ideals_sha256 == "1" * 64 and both.max_pixel_distance is not None
    assert both.max_distance == alone.max_distance and both.min_margin == alone.min_margin  # as before
    far_features, far_pixels = features > both.max_distance, pixels > both.max_pixel_distance
    assert int(far_features.sum()) == 20 and int((far_pixels & ~far_features).sum()) == 6  # 1%, then 0.3% more
    assert both.not_a_digit == 0.013 and alone.not_a_digit == 0.01
    assert alone.false_reject <= both.false_reject <= alone.false_reject + 0.003
    pixels_only = calibrate(probs, None, None, target=0.01, pixels=pixels, pixel_target=0.003)
    assert pixels_only.max_distance is None and pixels_only.not_a_digit == 0.003
    few = calibrate(probs[:100], features[:100], "0" * 64, pixels=pixels[:100], ideals_sha256="1" * 64)
    assert few.max_pixel_distance is None and few.ideals_sha256 is None  # too few digits: no "not a digit" check


def test_the_energy_rejects_a_little_more_beyond_the_distances():
    gen = torch.Generator().manual_seed(3)
    outputs = torch.randn(2000, 10, generator=gen) * 3
    probs, energy = torch.softmax(outputs, 1).double(), energies(outputs)
    features = torch.rand(2000, generator=gen).double()
    without = calibrate(probs, features, "0" * 64, target=0.01, pixel_target=0)
    found = calibrate(probs, features, "0" * 64, target=0.01, pixel_target=0, energy=energy, energy_target=0.004)
    assert without.min_energy is None and found.min_energy is not None
    assert found.max_distance == without.max_distance and found.min_margin == without.min_margin  # as before
    far_features, low = features > found.max_distance, energy < found.min_energy
    assert int((low & ~far_features).sum()) == 8  # 0.4% of the 2,000 more, below the threshold: the low ones
    assert found.not_a_digit == round(float((far_features | low).double().mean()), 6)
    assert calibrate(probs, features, None, energy=energy, energy_target=0).min_energy is None
    assert calibrate(probs[:100], features[:100], None, energy=energy[:100]).min_energy is None  # too few digits
    abstainer = Abstainer(found)
    assert abstainer.far(None, None, 2000, outputs).tolist() == low.tolist()  # the energy alone, from the outputs
    assert not abstainer.far(None, None, 2000).any()  # no outputs given: no energy check
    reasons = abstainer.reasons(probs, tuple("0123456789"), outputs=outputs)
    assert [r == NOT_A_DIGIT for r in reasons] == low.tolist()


def test_reasons_name_the_two_likeliest_classes():
    abstainer = Abstainer(Abstention(min_margin=0.2))
    probs = torch.tensor([[0.05, 0.5, 0.45], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4]]).double()
    assert abstainer.reasons(probs, ("4", "9", "7")) == ["not sure: 9 or 7?", None, "not sure: 7 or 4?"]


def test_cards_keep_their_calibration_and_old_cards_get_the_default():
    base = {"format": "digitlab-model", "architecture": {"name": "linear", "n_out": 1}, "classes": ["3", "7"]}
    base |= {"binary": True, "normalization": {"scale": 1 / 255, "mean": 0.0, "std": 1.0}}
    old = card_from_json(base)
    assert old.abstain is None and Abstainer.of(old).calibration.min_margin == DEFAULT_MIN_MARGIN
    assert not Abstainer.of(old).checks_digits
    calibrated = {**base, "abstain": {"min_margin": 0.05, "max_distance": 2.5, "n_valid": 2000, "false_reject": 0.02}}
    card = card_from_json(calibrated)
    assert card.abstain == Abstention(0.05, 2.5, n_valid=2000, false_reject=0.02)
    ideals = torch.zeros(2, 28, 28)
    assert card.abstain.max_pixel_distance is None and not Abstainer.of(card, ideals=ideals).checks_pixels
    assert card_from_json(card.to_json()) == card
    pixels = {"min_margin": 0.05, "max_distance": 2.5, "max_pixel_distance": 0.18, "ideals_sha256": "a" * 64}
    card = card_from_json({**base, "abstain": pixels})
    assert card.abstain is not None and card.abstain.max_pixel_distance == 0.18
    assert card.abstain.ideals_sha256 == "a" * 64 and card_from_json(card.to_json()) == card
    assert Abstainer.of(card, ideals=ideals).checks_pixels
    energy = card_from_json({**base, "abstain": {**pixels, "min_energy": 2.75}})
    assert (
        energy.abstain is not None and energy.abstain.min_energy == 2.75 and card_from_json(energy.to_json()) == energy
    )
    for bad, field in (
        ({"min_margin": 2}, "min_margin"),
        ({"min_margin": 0.1, "max_distance": -1}, "max_distance"),
        ({"min_margin": 0.1, "max_pixel_distance": 1.5}, "max_pixel_distance"),
        ({"min_margin": 0.1, "ideals_sha256": "not hex"}, "ideals_sha256"),
        ({"min_margin": 0.1, "min_energy": "low"}, "min_energy"),
        ({}, "min_margin"),
    ):
        with pytest.raises(CardError, match=field):
            card_from_json({**base, "abstain": bad})
    with pytest.raises(CardError, match="unknown fields"):
        card_from_json({**base, "abstain": {"min_margin": 0.1, "max_probability": 0.5}})


# ---- a trained model ------------------------------------------------------------------------------


def test_a_trained_model_abstains_on_what_is_not_a_digit(digit_cnn, offline_mnist):
    predictor = Predictor.load(digit_cnn)
    calibration = predictor.card.abstain
    assert calibration is not None and calibration.n_valid == 2000 and calibration.target == 0.01
    assert calibration.max_distance is not None and predictor.abstainer.checks_digits
    assert 0.01 <= calibration.false_reject <= 0.02 + PIXEL_TARGET  # each check 1% of the holdout, the pixels 0.25%
    valid = offline_mnist[0].valid
    found = predictor.predict(valid.images)
    assert sum(a is None for a in found.answers) / len(valid) == pytest.approx(calibration.false_reject, abs=1e-9)
    right = torch.tensor([a == valid.classes[int(y)] for a, y in zip(found.answers, valid.labels)])
    answered = torch.tensor([a is not None for a in found.answers])
    assert right[answered].double().mean() > (found.indices == valid.labels).double().mean()  # it drops mistakes
    rng = np.random.default_rng(0)
    sources = {"letters": letters(rng), "faces": faces(rng), "noise": noise(rng), "several": several(valid.images, rng)}
    rates = {name: rejected(predictor, images) for name, images in sources.items()}
    # measured with this CNN (2 epochs, 0.98 on the holdout): letters 0.42, faces 0.45, noise 0.45, several 0.88
    assert min(rates["letters"], rates["faces"], rates["noise"]) >= 0.3 and rates["several"] >= 0.6, rates
    margin_only = Predictor(predictor.model, predictor.card, abstainer=Abstainer(calibration))  # no statistics
    alone = {name: rejected(margin_only, images) for name, images in sources.items()}
    assert all(rates[name] > alone[name] for name in sources), (rates, alone)  # the distance check adds to each
    assert sum(rates.values()) >= sum(alone.values()) + 0.8, (rates, alone)  # ... and does most of the work


def test_a_model_trained_on_photos_also_checks_its_energy(digit_cnn, offline_mnist, tmp_path):
    from dataclasses import replace

    from digitlab.artifacts.serialization import load_ideal_digits, load_model
    from digitlab.predict.mahalanobis import load_stats

    saved = load_model(digit_cnn)
    dataset, _ = offline_mnist
    ideals = load_ideal_digits(digit_cnn, 10)
    assert (saved.card.config or {}).get("photos", 0) == 0 and saved.card.abstain.min_energy is None  # not on photos
    card = replace(saved.card, config={**(saved.card.config or {}), "photos": 0.25})  # as `train --photos 0.25` saves
    calibration = calibrate_model(saved.model, card, dataset.train, dataset.valid, tmp_path, ideals)
    (tmp_path / "plain").mkdir()
    plain = calibrate_model(saved.model, saved.card, dataset.train, dataset.valid, tmp_path / "plain", ideals)
    assert plain.min_energy is None and calibration.min_energy is not None
    assert calibration.max_distance == plain.max_distance  # the distances as before; the energy adds
    assert calibration.not_a_digit - plain.not_a_digit == pytest.approx(ENERGY_TARGET, abs=0.0006)
    assert (
        plain.false_reject <= calibration.false_reject <= plain.false_reject + ENERGY_TARGET + 1e-9
    )  # some were "not sure"
    card = replace(card, abstain=calibration)
    predictor = Predictor(saved.model, card, abstainer=Abstainer.of(card, load_stats(tmp_path, card), ideals))
    found = predictor.predict(dataset.valid.images)  # the holdout it was calibrated on: its share again
    assert sum(a is None for a in found.answers) / len(dataset.valid) == pytest.approx(calibration.false_reject)


def smileys() -> list[Image.Image]:
    """Faces from a thin outline to one as thick as a marker's, small to large eyes."""
    out = []
    for r in (60, 80, 90):
        for width in (4, 8, 12, 16):
            for eye in (4, 7, 10):
                image, draw = _page()
                draw.ellipse([100 - r, 100 - r, 100 + r, 100 + r], outline=0, width=width)
                for dx in (-r // 3, r // 3):
                    draw.ellipse([100 + dx - eye, 100 - r // 3 - eye, 100 + dx + eye, 100 - r // 3 + eye], fill=0)
                draw.arc([100 - r // 2, 100, 100 + r // 2, 100 + r // 2], 20, 160, fill=0, width=width)
                out.append(image)
    return out


def test_a_smiley_the_features_take_for_a_digit_is_far_from_every_ideal_digit(digit_cnn, offline_mnist):
    predictor = Predictor.load(digit_cnn)
    calibration = predictor.card.abstain
    assert calibration is not None and calibration.max_pixel_distance is not None and predictor.abstainer.checks_pixels
    assert calibration.not_a_digit == pytest.approx(TARGET + PIXEL_TARGET, abs=0.001)  # 1% and 0.25% more
    features_only = Predictor(
        predictor.model, predictor.card, abstainer=Abstainer(calibration, predictor.abstainer.stats)
    )  # the same thresholds without the ideal digits: the Mahalanobis check alone
    # 96 faces: on 2-epoch CNNs of seeds 0, 1, 2 and 42 (this one) 2-18 of them are caught so
    images = torch.stack([to_mnist(face) for face in smileys() + faces(np.random.default_rng(0), 60)])
    combined, alone = predictor.predict(images).reasons or [], features_only.predict(images).reasons or []
    # a face the features take for a digit (a circle: a 0) that the pixel distance rejects
    caught = [i for i, (c, a) in enumerate(zip(combined, alone)) if c == NOT_A_DIGIT and a is None]
    assert caught, (combined, alone)
    assert all(c == NOT_A_DIGIT for c, a in zip(combined, alone) if a == NOT_A_DIGIT)  # it only adds
    distance = pixel_distances(images[caught], predictor.abstainer.ideals)
    assert bool((distance > calibration.max_pixel_distance).all())
    # held-out digits: the two checks together reject what the card says, 1% as "not a digit"
    valid = offline_mnist[0].valid
    reasons = predictor.predict(valid.images).reasons or []
    assert sum(r == NOT_A_DIGIT for r in reasons) / len(valid) == pytest.approx(calibration.not_a_digit, abs=1e-9)
    assert sum(r is not None for r in reasons) / len(valid) == pytest.approx(calibration.false_reject, abs=1e-9)


def test_a_run_saved_before_the_pixel_check_loads_and_answers_as_before(digit_cnn, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    old = tmp_path / "old"
    shutil.copytree(digit_cnn, old)
    card = json.loads((old / "model.json").read_text())
    for key in ("max_pixel_distance", "ideals_sha256"):
        del card["abstain"][key]  # as digitlab wrote it before; ideal_digits.safetensors was beside it then too
    (old / "model.json").write_text(json.dumps(card))
    predictor = Predictor.load(old)
    assert predictor.abstainer.checks_features and not predictor.abstainer.checks_pixels
    stats = predictor.abstainer.stats
    assert predictor.abstainer == Abstainer(predictor.card.abstain, stats)  # exactly the checks it had
    images = torch.stack([to_mnist(face) for face in smileys()])
    reasons = predictor.predict(images).reasons
    assert reasons == Abstainer(predictor.card.abstain, stats).reasons(
        predictor.predict(images, abstain=False).probabilities,
        predictor.classes,
        outputs_and_features(predictor.model, images, predictor.card.normalization)[1],
    )
    assert NOT_A_DIGIT in reasons and None in reasons  # it still rejects some faces, and answers others
    face = tmp_path / "face.png"
    smileys()[0].save(face)
    with TestClient(create_app(old)) as client:
        body = client.post("/api/predict", content=face.read_bytes()).json()
    assert body["reason"] == reasons[0] and "distances" in body  # the page still shows the ideal digits' distances


def test_predict_and_the_api_say_why(digit_cnn, tmp_path, capsys):
    sign = tmp_path / "hash.png"  # one mark, not a digit (a smiley's eyes and mouth read as a number's digits)
    image, draw = _page(300)
    for at in (110, 190):
        draw.line([(at, 40), (at, 260)], fill=0, width=12)
        draw.line([(40, at), (260, at)], fill=0, width=12)
    image.save(sign)
    assert main(["predict", str(digit_cnn), str(sign), "--json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)["predictions"]
    assert answer["label"] is None and answer["reason"] == NOT_A_DIGIT and len(answer["top_k"]) == 3
    assert main(["predict", str(digit_cnn), str(sign)]) == 0
    assert NOT_A_DIGIT in capsys.readouterr().out

    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    with TestClient(create_app(digit_cnn)) as client:
        body = client.post("/api/predict", content=sign.read_bytes()).json()
    assert body["label"] is None and body["reason"] == NOT_A_DIGIT and body["top_k"] == answer["top_k"]


def test_each_digit_of_a_number_says_where_the_model_would_abstain(digit_cnn):
    from digitlab.predict.numbers import read_number

    predictor = Predictor.load(digit_cnn)
    reading = read_number(predictor, faces(np.random.default_rng(3), 1)[0])  # a smiley: read as marks
    alone = predictor.predict(torch.stack([d.image for d in reading.digits]))
    digits = reading.as_json()["digits"]
    assert [d["reason"] for d in digits] == alone.reasons and len(digits) > 1
    assert [d["label"] for d in digits] == alone.labels  # each keeps its likeliest label


def test_the_statistics_file_is_checked(digit_cnn, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(digit_cnn, copy)
    (copy / STATS).unlink()  # a model.json copied without it: answers, without the "not a digit" check
    assert not Predictor.load(copy).abstainer.checks_features
    (copy / STATS).write_bytes(b"\x00" * 64)
    with pytest.raises(DigitlabError, match="corrupt abstention statistics"):
        Predictor.load(copy)
    save_stats(copy, ClassStats(torch.zeros(10, 32, dtype=torch.float64), torch.eye(32, dtype=torch.float64)))
    with pytest.raises(DigitlabError, match="sha256 differs"):
        Predictor.load(copy)


def test_the_ideal_digits_file_is_checked(digit_cnn, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(digit_cnn, copy)
    assert Predictor.load(copy).abstainer.checks_pixels
    (copy / IDEALS).unlink()  # a model.json copied without it: no pixel check, the features' still
    found = Predictor.load(copy).abstainer
    assert not found.checks_pixels and found.checks_features
    save_ideal_digits(copy, torch.rand(10, 28, 28))
    with pytest.raises(DigitlabError, match=r"ideal_digits\.safetensors: not the ideal digits .* \(sha256 differs\)"):
        Predictor.load(copy)
