"""`digitlab train --report`, `digitlab report` and `digitlab explain`: self-contained pages that
a real browser (Debian's chromium, headless) renders without a single network request."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.cli import main

CHROMIUM = "/usr/bin/chromium"


def _assert_self_contained(page: Path) -> int:
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "page links to the network"
    assert "@import" not in text and "url(http" not in text
    return text.count('src="data:image/png;base64,')


def _render(page: Path) -> tuple[list[str], np.ndarray]:
    """Open the page in headless chromium; return every URL it requested and a screenshot."""
    assert shutil.which(CHROMIUM), "Debian's chromium is needed: `make test` and .ci/run install it"
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 1100, "height": 1400})
            tab.on("request", lambda request: requests.append(request.url))
            tab.goto(page.as_uri())
            tab.wait_for_load_state("load")
            png = tab.screenshot(full_page=True)
        finally:
            browser.close()
    return requests, np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def test_train_report_renders_offline(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 12, "valid": 6})
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "sample"), "--epochs", "3", "--out", str(out), "--report",
                 "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    page = Path(result["report"])
    assert page == out / "report.html"
    assert _assert_self_contained(page) >= 6  # ideal digits, curves, schedule, confusion, top losses, weights
    text = page.read_text()
    assert f"accuracy {result['accuracy']:.4f}" in text and "pixel-similarity baseline" in text
    assert {p.name for p in (out / "report").glob("*.png")} >= {"loss_curves.png", "confusion_matrix.png",
                                                                  "top_losses.png", "weights.png"}
    requests, screenshot = _render(page)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert screenshot.shape[0] > 1400 and screenshot.std() > 20  # a long page, not blank


def test_report_command_on_an_existing_run(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 8, "valid": 4})
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "sample"), "--model", "simple_net", "--epochs", "2",
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["html"] == str(out / "report.html") and len(written["figures"]) >= 5
    assert "What the linear model looks for" not in (out / "report.html").read_text()  # simple_net has no weight map


def test_report_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a digitlab model" in capsys.readouterr().err


def test_explain_draws_the_chapter(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 10, "valid": 5})
    assert main(["explain", "--data", str(tmp_path / "sample"), "--out", str(tmp_path / "figs"), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    names = {Path(f).name for f in written["figures"]}
    assert names == {"pixels.png", "ideal_digits.png", "against_ideals.png", "distance_histograms.png",
                     "activations.png", "sgd_quadratic.png", "roller_coaster.png"}
    page = Path(written["html"])
    assert _assert_self_contained(page) == 7
    requests, screenshot = _render(page)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert screenshot.std() > 20
