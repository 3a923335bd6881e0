"""`digitlab train`, `evaluate` and `demo` as a user runs them, on tiny synthetic folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab.artifacts.serialization import load_model
from digitlab.cli import main
from digitlab.data.formats.idx import write_idx


@pytest.fixture
def sample(tmp_path, png_tree) -> Path:
    """A fastai-layout 3-vs-7 PNG folder: 40 training and 16 validation images."""
    root = tmp_path / "sample"
    png_tree(root, {"train": 20, "valid": 8})
    return root


def run_json(capsys, *argv) -> dict:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def fails(capsys, *argv) -> str:
    """Run a command that must fail with exit code 2; returns its stderr (one line, no traceback)."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in history]


def test_train_then_evaluate(capsys, tmp_path, sample):
    run = tmp_path / "run"
    result = run_json(capsys, "train", "--data", str(sample), "--model", "linear", "--epochs", "3", "--out", str(run))
    assert result["accuracy"] >= 0.9
    assert set(result["per_class"]) == {"3", "7"}
    assert result["epochs"] == 3 and result["model"] == "linear"
    assert result["n_train"] == 40 and result["n_valid"] == 16
    assert result["fit_seconds"] > 0
    assert len(result["history"]) == 3 and [row["epoch"] for row in result["history"]] == [1, 2, 3]
    assert {"train_loss", "valid_loss", "batch_accuracy"} <= set(result["history"][0])
    model_path = Path(result["model_path"])
    assert model_path.exists() and model_path.parent == run
    saved = load_model(run)
    assert saved.classes == ("3", "7") and saved.card.binary is True
    assert saved.card.metrics is not None and saved.card.metrics.accuracy == result["accuracy"]
    assert without_time(saved.card.history) == without_time(result["history"])

    evaluated = run_json(capsys, "evaluate", str(run), "--data", str(sample))
    assert evaluated["accuracy"] == result["accuracy"]
    assert evaluated["per_class"] == result["per_class"] and evaluated["n_valid"] == 16
    assert evaluated["reduced_to_model_classes"] is None
    # the model.json path names the same model
    assert (
        run_json(capsys, "evaluate", str(run / "model.json"), "--data", str(sample))["accuracy"] == result["accuracy"]
    )


def test_train_and_evaluate_with_tta_and_bf16(capsys, tmp_path, sample):
    run = tmp_path / "run"
    result = run_json(
        capsys,
        "train",
        "--data",
        str(sample),
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--tta",
        "--precision",
        "bf16",
        "--out",
        str(run),
        "--quiet",
    )
    assert result["config"]["tta"] is True and result["config"]["precision"] == "bf16"
    assert result["compile_seconds"] is None  # no --compile
    saved = load_model(run)
    assert saved.card.metrics is not None and saved.card.metrics.tta is True
    evaluated = run_json(capsys, "evaluate", str(run), "--data", str(sample), "--tta")
    assert evaluated["tta"] is True and evaluated["accuracy"] == result["accuracy"]  # the same TTA evaluation
    assert run_json(capsys, "evaluate", str(run), "--data", str(sample))["tta"] is False


def test_train_without_json_prints_a_report(capsys, tmp_path, sample):
    assert main(["train", "--data", str(sample), "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "accuracy" in captured.out and "saved" in captured.out
    assert "train_loss" in captured.err  # the epoch table goes to stderr


def test_evaluate_a_two_class_model_on_a_ten_class_idx_test_set(capsys, tmp_path, sample, digits_factory):
    run = tmp_path / "run"
    run_json(capsys, "train", "--data", str(sample), "--epochs", "2", "--out", str(run), "--quiet")
    test_set = tmp_path / "mnist-test"
    test_set.mkdir()
    images, labels = digits_factory(5, tuple(range(10)), 3)  # 50 images, 5 per digit
    write_idx(test_set / "t10k-images-idx3-ubyte.gz", images)
    write_idx(test_set / "t10k-labels-idx1-ubyte.gz", labels)
    report = run_json(capsys, "evaluate", str(run), "--data", str(test_set))
    assert report["classes"] == ["3", "7"] and set(report["per_class"]) == {"3", "7"}
    assert report["n_valid"] == 10
    note = report["reduced_to_model_classes"]
    assert note and "3, 7" in note and "10 of 50" in note
    assert len(report["confusion"]) == 2


def test_train_with_a_huge_learning_rate_stops_with_a_one_line_error(capsys, tmp_path):
    # Random pixels in 3 classes: not separable, so the linear model's cross-entropy explodes.
    # (On two classes the book's mnist_loss is bounded in [0, 1] and cannot "diverge".)
    rng = np.random.default_rng(0)
    data = tmp_path / "noise"
    data.mkdir()
    for split, n in (("train", 60), ("t10k", 30)):
        write_idx(data / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    err = fails(
        capsys,
        "train",
        "--data",
        str(data),
        "--model",
        "linear",
        "--lr",
        "1000",
        "--epochs",
        "3",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    )
    assert "diverged" in err and "epoch" in err and "learning rate 1000" in err
    assert not (tmp_path / "run").exists()  # nothing saved


def test_train_rejects_zero_epochs(capsys, sample):
    assert "--epochs" in fails(capsys, "train", "--data", str(sample), "--epochs", "0")


def test_evaluate_something_that_is_not_a_model(capsys, tmp_path, sample):
    assert "not a digitlab model" in fails(capsys, "evaluate", str(sample), "--data", str(sample))
    assert "not a digitlab model" in fails(capsys, "evaluate", str(tmp_path / "missing"), "--data", str(sample))


def test_demo_runs_the_baseline_and_the_linear_model(capsys, sample):
    report = run_json(capsys, "demo", "--data", str(sample), "--models", "linear", "--quiet")
    assert [row["model"] for row in report["rows"]] == ["pixel_similarity", "linear"]
    baseline, linear = report["rows"]
    assert baseline["accuracy"] == 1.0 and linear["accuracy"] >= 0.9
    assert linear["book"] == pytest.approx(0.968) and linear["epochs"] >= 1
    assert report["n_train"] == 40 and report["n_valid"] == 16


def test_demo_loads_its_data_once(capsys, sample, monkeypatch):
    import digitlab.data.loading

    loaded = []
    real = digitlab.data.loading.load_dataset
    spy = lambda spec, *a, **k: loaded.append(spec) or real(spec, *a, **k)  # noqa: E731
    monkeypatch.setattr(digitlab.data.loading, "load_dataset", spy)
    report = run_json(capsys, "demo", "--data", str(sample), "--models", "linear,simple_net", "--quiet")
    assert [row["model"] for row in report["rows"]] == ["pixel_similarity", "linear", "simple_net"]
    assert loaded == [str(sample)]  # once for the baseline and both models (it was three times)


def test_train_json_keys_and_status_lines(capsys, tmp_path, sample):
    """The CLI formats the run: the JSON keys scripts read, and the status lines on stderr."""
    code = main(["train", "--data", str(sample), "--epochs", "1", "--out", str(tmp_path / "run"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    assert set(result) == {  # what scripts read; the order is JSON's own business
        "accuracy",
        "per_class",
        "n_valid",
        "confusion",
        "model",
        "epochs",
        "n_train",
        "fit_seconds",
        "history",
        "model_path",
        "config",
        "classes",
        "threads",
        "threads_why",
        "device",
        "recipe",
        "cuda_graphs",
        "startup_seconds",
        "startup",
        "world_size",
        "weights_sha256",
        "compile_seconds",
        "data",
        "data_source",
        "valid",
    }
    assert result["config"]["lr"] == 1.0 and result["config"]["bs"] == 256  # resolved
    assert (result["device"], result["recipe"], result["config"]["recipe"]) == ("cpu", "cpu", "cpu")
    assert result["cuda_graphs"] == "eager: the model is on cpu (CUDA graphs are CUDA's)"
    # start-up apart from training: each phase timed, before the fit (fit_seconds is the fit's alone)
    assert list(result["startup"]) == [
        "read the command",
        "import torch",
        "load the data",
        "prepare the run",
        "build the learner",
    ]
    assert result["startup_seconds"] == pytest.approx(sum(result["startup"].values()), abs=1e-3)
    assert all(seconds >= 0 for seconds in result["startup"].values())
    assert "training linear on 40 images (3, 7), validating on 16; 1 epochs, lr 1.0, bs 256, seed 42" in captured.err
    assert "marks that are not digits" not in captured.err  # the book's models train as the book's


def test_the_cnn_says_it_trains_beside_marks_that_are_not_digits(capsys, tmp_path, sample):
    args = ["train", "--data", str(sample), "--model", "cnn", "--epochs", "1", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    said = capsys.readouterr().err
    assert "; with marks that are not digits (--outliers 0.1) and 20% of the digits drawn thicker" in said
    assert main([*args, "--overwrite", "--thicken", "0"]) == 0
    said = capsys.readouterr().err
    assert "; with marks that are not digits (--outliers 0.1)\n" in said and "thicker" not in said


def test_the_seed_makes_a_run_repeatable(capsys, tmp_path, sample):
    def history(seed: int, out: str) -> list[dict]:
        result = run_json(
            capsys,
            "train",
            "--data",
            str(sample),
            "--model",
            "simple_net",
            "--epochs",
            "3",
            "--lr",
            "0.5",
            "--bs",
            "16",
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / out),
            "--quiet",
        )
        assert result["config"]["seed"] == seed
        return without_time(result["history"])

    first, again, other = history(3, "a"), history(3, "b"), history(4, "c")
    assert first == again
    assert first != other
    weights = [load_model(tmp_path / name).model.state_dict() for name in ("a", "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_checkpoints_are_saved_every_epoch_and_loadable(capsys, tmp_path, png_tree, train_cli):
    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    out = tmp_path / "run"
    train_cli(tmp_path / "sample", out, "--epochs", "2", "--checkpoints", "--json")
    capsys.readouterr()
    meta = json.loads((out / "checkpoint" / "model.json").read_text())
    assert meta["epoch"] == 2 and meta["checkpoint"] is True
    assert main(["evaluate", str(out / "checkpoint"), "--data", str(tmp_path / "sample"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_valid"] == 6


def test_lr_find_prints_a_suggestion_and_trains_nothing(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 20, "valid": 4})
    assert (
        main(["train", "--data", str(tmp_path / "sample"), "--lr-find", "--json", "--out", str(tmp_path / "run")]) == 0
    )
    found = json.loads(capsys.readouterr().out)
    assert found["lrs"][0] == 1e-7 and len(found["lrs"]) == len(found["losses"]) > 10
    assert found["lrs"][0] <= found["suggestion"] <= found["lrs"][-1]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["lr_find.png"]  # the curve, no model


def test_device_on_every_command_that_runs_a_model(capsys, tmp_path, sample, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--data", str(sample), "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["evaluate", str(run), "--data", str(sample), "--device", "auto", "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["device"] == "cpu"
    assert "--device auto: evaluating on cpu" in captured.err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command in (["evaluate", str(run)], ["predict", str(run), str(sample)], ["serve", str(run)]):
        err = fails(capsys, *command, "--device", "cuda")
        assert err == "digitlab: error: device 'cuda' is not available here (try --device auto or cpu)\n", command


def test_fp16_is_refused_in_one_line(capsys, sample):
    err = fails(capsys, "train", "--data", str(sample), "--precision", "fp16")
    assert "--precision fp16: float16 needs loss scaling" in err and "use --precision bf16" in err


def test_making_the_optimizer_does_not_import_torch_dynamo():
    """torch.optim.Optimizer's add_param_group imports torch._dynamo on first call (seconds, measured):
    digitlab's SGD calls it without that wrapper, so a fit's start-up does not pay it."""
    import subprocess
    import sys

    code = (
        "import sys, torch; from digitlab.train.optim import SGD; from digitlab.models import build_model; "
        "m = build_model('cnn', n_out=10); o = SGD(m.parameters(), lr=0.1, mom=0.9); "
        "o.add_param_group({'params': [torch.zeros(2, requires_grad=True)]}); "
        "print('torch._dynamo' in sys.modules, len(o.param_groups), o.param_groups[1]['momentum'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "2", "0.9"]


def test_bs_and_seed_go_from_the_flag_to_the_loader_the_card_and_the_report(capsys, tmp_path, sample, monkeypatch):
    """One path: `--bs 8 --seed 7` is the config's, the DataLoader's batch size, the card's config, and
    the report names each once."""
    import re

    from digitlab.train import dataloader

    sizes = []
    real = dataloader.DataLoaders.from_tensors
    spy = lambda *a, **k: sizes.append(k["batch_size"]) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(dataloader.DataLoaders, "from_tensors", spy)
    out = tmp_path / "run"
    result = run_json(capsys, "train", "--data", str(sample), "--epochs", "1", "--bs", "8", "--seed", "7",
                      "--out", str(out), "--report")  # fmt: skip
    assert sizes == [8] and (result["config"]["bs"], result["config"]["seed"]) == (8, 7)
    card = json.loads((out / "model.json").read_text())
    assert (card["config"]["bs"], card["config"]["seed"]) == (8, 7) and "seed" not in card
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", (out / "report.html").read_text())
    assert cells.count("bs") == 1 and cells.count("seed") == 1
    assert cells[cells.index("bs") + 1] == "8" and cells[cells.index("seed") + 1] == "7"
