"""torchrun with 2 CPU processes (gloo): same weights on both ranks, accuracy like one process."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from digitlab.train.dataloader import DataLoader
from digitlab.train.distributed import DistEnv

pytestmark = pytest.mark.slow  # starts several training processes


def test_dist_env_from_torchrun_variables():
    assert DistEnv.from_env({}) == DistEnv(0, 1, 0) and not DistEnv.from_env({}).enabled
    env = DistEnv.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert env.enabled and not env.is_main and env.device("cuda") == "cuda:1" and env.device("cpu") == "cpu"


def test_two_processes_agree_and_match_one(tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 60, "valid": 20}, classes=(3, 7))
    common = [
        "train",
        "--data",
        str(tmp_path / "sample"),
        "--model",
        "simple_net",
        "--epochs",
        "4",
        "--seed",
        "1",
        "--quiet",
        "--json",
    ]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "digitlab",
            *common,
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    fingerprints = dict(re.findall(r"rank (\d): weights sha256 ([0-9a-f]{64})", run.stderr))
    assert set(fingerprints) == {"0", "1"} and fingerprints["0"] == fingerprints["1"]
    result = json.loads(run.stdout)  # only rank 0 printed
    assert result["world_size"] == 2 and result["weights_sha256"] == fingerprints["0"]
    assert (tmp_path / "ddp" / "model.safetensors").exists()
    single = subprocess.run(
        [sys.executable, "-m", "digitlab", *common, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    one = json.loads(single.stdout)
    assert one["world_size"] == 1
    assert abs(result["accuracy"] - one["accuracy"]) <= 0.05  # 40 valid images: within noise
    assert result["accuracy"] >= 0.9
    # each rank saw half of each epoch: the sum of both halves is the whole training set
    assert result["n_train"] == one["n_train"] == 120


def test_shards_of_the_training_loader_partition_an_epoch():
    x = torch.arange(10)
    halves = [
        torch.cat([b for (b,) in DataLoader((x,), batch_size=3, shuffle=True, seed=0, shard=(r, 2))]) for r in (0, 1)
    ]
    assert sorted(torch.cat(halves).tolist()) == list(range(10))
