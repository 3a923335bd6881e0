"""The command line as a user meets it: help, JSON, one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from digitlab.cli import main
from digitlab.data.formats.idx import write_idx


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "command", ["data", "baseline", "show", "train", "evaluate", "demo", "report", "explain", "predict", "serve"]
)
def test_every_command_has_help_with_examples(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "baseline" in capsys.readouterr().out


def test_baseline_on_a_png_folder(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 8, "valid": 4})
    result = run_json(capsys, "baseline", "--data", str(tmp_path / "sample"))
    assert result["accuracy"] == 1.0 and result["per_class"] == {"3": 1.0, "7": 1.0}
    assert result["n_valid"] == 8 and result["metric"] == "l1" and result["data_source"] == "folder"
    assert result["n_train"] == 16


def test_second_load_of_a_folder_comes_from_the_cache(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 5, "valid": 2})
    main(["data", "info", str(tmp_path / "sample")])
    assert "decoded from cache" not in capsys.readouterr().err
    main(["data", "info", str(tmp_path / "sample")])
    assert "decoded from cache" in capsys.readouterr().err


def test_baseline_with_a_ten_class_valid_set_keeps_known_classes(capsys, tmp_path, png_tree, digits_factory):
    png_tree(tmp_path / "sample", {"train": 8, "valid": 4})
    images, labels = digits_factory(3, classes=tuple(range(10)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    assert (
        main(["baseline", "--data", str(tmp_path / "sample"), "--valid", str(tmp_path), "--metric", "rmse", "--json"])
        == 0
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["n_valid"] == 6 and result["valid_reduced_from"] == 30
    assert result["n_train"] == 16  # the dataset's own valid split is not trained on
    assert "kept the classes the model knows" in captured.err


def test_baseline_on_npz_holds_out_when_no_test_split(capsys, tmp_path, digits_factory):
    images, labels = digits_factory(10, classes=(0, 1, 2))
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels)
    result = run_json(capsys, "baseline", "--data", str(tmp_path / "mnist.npz"))
    assert result["n_valid"] == 6 and result["valid"] == "holdout" and result["accuracy"] == 1.0


def test_data_info_and_list(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"training": 3, "testing": 2})
    info = run_json(capsys, "data", "info", str(tmp_path / "sample"))
    assert info["splits"]["train"]["per_class"] == {"3": 3, "7": 3} and info["splits"]["valid"]["n"] == 4
    listing = run_json(capsys, "data", "list")
    assert [d["name"] for d in listing["datasets"]] == ["mnist_sample", "mnist_tiny", "mnist"]


def test_show_a_dataset_digit_and_save_png(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 2, "valid": 1})
    out = tmp_path / "table.png"
    shown = run_json(capsys, "show", f"{tmp_path / 'sample'}:3", "--crop", "4:10,4:12", "--png", str(out))
    assert shown["label"] == "7" and len(shown["pixels"]) == 6 and len(shown["pixels"][0]) == 8
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    main(["show", str(tmp_path / "sample" / "train" / "3" / "0.png")])
    text = capsys.readouterr().out
    assert (len(text.splitlines()) == 29 and "255" in text) or " 2" in text  # header + 28 rows of numbers


def test_show_crops_by_name(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 2, "valid": 1})
    image = np.asarray(Image.open(min((tmp_path / "sample" / "train" / "3").glob("*.png"))))
    shown = run_json(capsys, "show", f"{tmp_path / 'sample'}:0", "--crop", "top-left")
    assert shown["pixels"] == image[:14, :14].tolist()
    assert main(["show", f"{tmp_path / 'sample'}:0", "--crop", "centre"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [str(c) for c in range(7, 21)] and lines[2].split()[0] == "7" and len(lines) == 16
    assert main(["show", f"{tmp_path / 'sample'}:0", "--crop", "middle"]) == 2
    err = capsys.readouterr().err
    assert "bad crop 'middle'" in err and "top-left, top-right, bottom-left, bottom-right, centre" in err
    with pytest.raises(SystemExit):
        main(["show", "--help"])
    assert "top-left" in capsys.readouterr().out


def test_show_index_out_of_range(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 1, "valid": 1})
    assert main(["show", f"{tmp_path / 'sample'}:99"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_truncated_idx_exits_2_naming_the_file(capsys, tmp_path, digits_factory):
    images, labels = digits_factory(3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-50])
    assert main(["baseline", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t10k-images-idx3-ubyte" in err and "truncated" in err


def test_archive_with_dotdot_member_writes_nothing_outside_cache(capsys, tmp_path, session_home):
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"owned"
        member = tarfile.TarInfo("../../../../escaped.txt")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))

    assert main(["baseline", "--data", str(archive)]) == 2
    assert "escaped.txt" in capsys.readouterr().err
    # Extracted anywhere (under the cache, or beside the archive), "../../../../escaped.txt" would
    # land in that folder or one of its ancestors: none of them holds it. (Not a scan of the whole
    # temp root, which other test runs write to meanwhile.)
    for folder in (session_home, tmp_path):
        assert not list(folder.rglob("escaped.txt"))
        assert not any((ancestor / "escaped.txt").exists() for ancestor in folder.parents)


def test_errors_have_no_traceback_unless_debug(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not digits")
    cmd = [sys.executable, "-m", "digitlab", "baseline", "--data", str(bad)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("digitlab: error:") and str(bad) in result.stderr
    debug = subprocess.run([*cmd, "--debug"], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_ten_class_accuracy_table_fits_80_columns(capsys, monkeypatch):
    from digitlab.cli.evaluate_cmd import print_accuracy_table

    monkeypatch.setenv("COLUMNS", "80")
    classes = [str(c) for c in range(10)]
    confusion = [[1_000 if i == j else 3 for j in range(10)] for i in range(10)]
    report = {
        "per_class": dict.fromkeys(classes, 0.9731),
        "confusion": confusion,
        "accuracy": 0.9731,
        "n_valid": 10_270,
    }
    print_accuracy_table(report, "cnn on mnist")
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if "0.9731" in line and "images" not in line]
    assert len(rows) == 10 and all("1,000" in row for row in rows)  # no accuracy or count cut to "0.9…"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["data", "list"], ["exercises", "list"], ["exercises", "show", "is_3"]],
)
def test_commands_that_run_no_model_load_no_torch(argv):
    """They answer at once (torch alone takes ~1 s to import): --help, listing data and exercises."""
    script = (
        "import sys\nfrom digitlab.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "sys.stdout.flush()\nprint('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert done.stdout and done.stderr.strip().endswith("no torch"), done.stderr
